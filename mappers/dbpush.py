"""pushMethod.dbMethod: readings into Redis and MySQL/MariaDB, stored as KubeEdge's
mapper-framework stores them, so tools written against a KubeEdge mapper's data keep working.

- redis `{redisClientConfig {addr, db, poolsize, minIdleConns}}`: `ZADD <device name>` with the
  reading's timestamp (ms) as score and `TimeStamp: <ms> PropertyName: <property> data: <value>`
  as member.
- mysql `{mysqlClientConfig {addr, database, userName}}`: one table per property, named
  `<namespace>/<device>/<property>`, `(id INT AUTO_INCREMENT PRIMARY KEY, ts DATETIME NOT NULL,
  field TEXT)`, created when missing; `ts` is the reading's time in UTC, to the second.

The password comes from the mapper's environment variable `PASSWORD`, as KubeEdge's mappers read
it (set it from a Secret with `env[].valueFrom.secretKeyRef` in the mapper's pod); it is never
logged. influxdb2 and TDengine have no server on this machine to test against, so they are refused
with a reason on the twin rather than claimed (mappers.push.NOT_SERVED).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
from collections.abc import Mapping, Sequence
from typing import Any

import pymysql
import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from mappers.driver import VisitorError
from mappers.pushtargets import PushRefused, Reading

TIMEOUT = 5.0  # seconds to connect or answer
MYSQL_NAME_MAX = 64  # MySQL's and MariaDB's identifier limit


def _host_port(addr: Any, default: int, what: str) -> tuple[str, int]:
    host, _, port = str(addr or "").rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise VisitorError(f"pushMethod.dbMethod.{what}.addr: {addr!r} is not host:port")
    return host.strip("[]"), int(port or default)


def _int(config: Mapping[str, Any], *keys: str, default: int) -> int:
    for key in keys:
        if key in config:
            try:
                return int(config[key])
            except (TypeError, ValueError):
                raise VisitorError(f"{key}: {config[key]!r} is not a number") from None
    return default


class RedisPush:
    batch = 200

    def __init__(self, config: Mapping[str, Any]) -> None:
        client = config.get("redisClientConfig")
        if not isinstance(client, Mapping):
            raise VisitorError("pushMethod.dbMethod.redis: needs redisClientConfig")
        host, port = _host_port(client.get("addr"), 6379, "redis.redisClientConfig")
        self.client = aioredis.Redis(
            host=host, port=port, db=_int(client, "db", default=0),
            password=os.environ.get("PASSWORD") or None,
            max_connections=max(1, _int(client, "poolsize", "poolSize", default=4)),
            socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT,
            retry=Retry(NoBackoff(), 0),  # the outbox retries, with its own backoff
        )  # fmt: skip

    async def send(self, readings: Sequence[Reading]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for r in readings:
            pipe.zadd(r.name, {f"TimeStamp: {r.timestamp} PropertyName: {r.prop} data: {r.value}":
                               r.timestamp})  # fmt: skip
        try:
            await pipe.execute()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise ConnectionError(f"Redis: {exc}") from exc
        except redis.exceptions.RedisError as exc:  # WRONGTYPE and the like: never taken
            raise PushRefused(f"Redis: {exc}") from exc

    async def close(self) -> None:
        await self.client.aclose()


def mysql_table(reading_device: str, prop: str) -> str:
    table = f"{reading_device}/{prop}"
    if len(table) > MYSQL_NAME_MAX or "`" in table:
        raise VisitorError(
            f"pushMethod.dbMethod.mysql: table name {table!r} is longer than MySQL's "
            f"{MYSQL_NAME_MAX} characters"
        )
    return table


class MysqlPush:
    """PyMySQL on a worker thread: one connection, opened on first use and after a loss."""

    batch = 200

    def __init__(self, config: Mapping[str, Any]) -> None:
        client = config.get("mysqlClientConfig")
        if not isinstance(client, Mapping):
            raise VisitorError("pushMethod.dbMethod.mysql: needs mysqlClientConfig")
        self.host, self.port = _host_port(client.get("addr"), 3306, "mysql.mysqlClientConfig")
        self.database = str(client.get("database") or "")
        self.user = str(client.get("userName") or "")
        if not self.database or not self.user:
            raise VisitorError("pushMethod.dbMethod.mysql: database and userName are required")
        self._password = os.environ.get("PASSWORD", "")
        self._conn: pymysql.connections.Connection[Any] | None = None
        self._tables: set[str] = set()  # created (or found) on this connection

    def _connect(self) -> pymysql.connections.Connection[Any]:
        if self._conn is None:
            self._conn = pymysql.connect(
                host=self.host, port=self.port, user=self.user, password=self._password,
                database=self.database, connect_timeout=TIMEOUT, read_timeout=TIMEOUT,
                write_timeout=TIMEOUT, charset="utf8mb4",
            )  # fmt: skip
            self._tables.clear()
        return self._conn

    def _insert(self, readings: Sequence[Reading]) -> None:
        conn = self._connect()
        rows: dict[str, list[tuple[str, str]]] = {}
        for r in readings:
            ts = datetime.datetime.fromtimestamp(r.timestamp / 1000, datetime.UTC)
            rows.setdefault(mysql_table(r.device, r.prop), []).append(
                (ts.strftime("%Y-%m-%d %H:%M:%S"), r.value)
            )
        with conn.cursor() as cursor:
            for table, values in rows.items():
                if table not in self._tables:
                    cursor.execute(
                        f"CREATE TABLE IF NOT EXISTS `{table}` (id INT AUTO_INCREMENT PRIMARY "
                        "KEY, ts DATETIME NOT NULL, field TEXT)"
                    )
                    self._tables.add(table)
                cursor.executemany(f"INSERT INTO `{table}` (ts, field) VALUES (%s, %s)", values)
        conn.commit()

    def _send(self, readings: Sequence[Reading]) -> None:
        try:
            self._insert(readings)
        except (pymysql.err.OperationalError, pymysql.err.InterfaceError, OSError) as exc:
            self._drop()  # lost, refused or timed out: a new connection next time
            raise ConnectionError(f"MySQL: {exc}") from exc
        except pymysql.err.Error as exc:  # a value or statement the server will never take
            self._drop()
            raise PushRefused(f"MySQL: {exc}") from exc
        except VisitorError as exc:  # a property added to a kept target, its name too long
            raise PushRefused(str(exc)) from exc

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(pymysql.err.Error):  # already closed by the server
                self._conn.close()
            self._conn = None

    async def send(self, readings: Sequence[Reading]) -> None:
        await asyncio.to_thread(self._send, readings)

    async def close(self) -> None:
        await asyncio.to_thread(self._drop)
