"""pushMethod.dbMethod into real Redis and MariaDB servers, with the password from the mapper's
environment (as a Secret would set it); a database that stops and starts again gets the readings
taken meanwhile, while the twin keeps reporting."""

from __future__ import annotations

import asyncio
import datetime
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pymysql
import pytest
import redis

from harness.databases import Server, mariadb_server, redis_server
from harness.support import Mosquitto, MqttProbe, free_port, mapper_running, wait_until
from simulators.modbus import ModbusSimulator

MEMBER = re.compile(rb"TimeStamp: (\d+) PropertyName: temperature data: (-?[\d.]+)")


def entry(modbus_port: int, push: dict[str, Any]) -> dict[str, Any]:
    visitors = {"register": "InputRegister", "offset": 0, "limit": 1, "scale": 0.1}
    protocol = {"ip": "127.0.0.1", "port": modbus_port, "slaveID": 1}
    return {
        "id": "default/thermo", "name": "thermo", "namespace": "default", "twin": {},
        "spec": {
            "protocol": {"protocolName": "modbus", "configData": protocol},
            "properties": [{"name": "temperature", "type": "float", "accessMode": "ReadOnly",
                            "collectCycle": 100, "reportCycle": 200,
                            "visitors": {"configData": visitors}, "pushMethod": push}],
        },
    }  # fmt: skip


@asynccontextmanager
async def serving(broker: Mosquitto, push: dict[str, Any]) -> AsyncIterator[MqttProbe]:
    """A modbus simulator and an in-process mapper given one device pushing to `push`."""
    simulator = ModbusSimulator(free_port())
    await simulator.start()
    probe = MqttProbe(broker.port)
    probe.subscribe("$hw/events/#")
    try:
        async with mapper_running("modbus", broker.url):
            asked = await asyncio.to_thread(probe.expect, "$hw/events/node/n1/membership/get")
            answer = {"event_id": asked["event_id"], "devices": [entry(simulator.port, push)]}
            probe.publish("$hw/events/node/n1/membership/get/result/modbus", answer)
            yield probe
    finally:
        probe.close()
        await simulator.stop()


async def outage(server: Server, probe: MqttProbe, stored: Callable[[int, int], set[int]]) -> None:
    """Stop the database for a while, the twin reporting on; then the readings taken meanwhile
    arrive once it is back. `stored(since, until)`: the seconds (epoch) of the readings stored
    in that window of milliseconds."""
    await asyncio.to_thread(server.stop)
    down = time.time_ns() // 1_000_000
    for _ in range(20):  # twins unaffected: reports go on while the database is away
        await asyncio.to_thread(
            probe.expect, "$hw/events/device/default/thermo/twin/update",
            lambda b: b.get("timestamp", 0) > down,
        )  # fmt: skip
    await asyncio.to_thread(server.start)
    up = time.time_ns() // 1_000_000
    # one reading per 100 ms was taken: none of the seconds of the outage may be missing
    seconds = set(range(down // 1000 + 1, up // 1000))
    assert len(seconds) >= 2
    await wait_until(lambda: seconds <= stored(down, up), within=60, what="buffered readings")


async def test_redis_push_when_configured_stores_kubeedge_members(
    broker: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PASSWORD", "redis-s3cret")
    with redis_server("redis-s3cret") as server:
        push = {"dbMethod": {"redis": {"redisClientConfig": {
            "addr": f"127.0.0.1:{server.port}", "db": 2, "poolsize": 2}}}}  # fmt: skip
        db = redis.Redis(port=server.port, password="redis-s3cret", db=2)
        async with serving(broker, push) as probe:
            await wait_until(lambda: db.zcard("thermo") >= 3, within=20, what="readings in Redis")
            member, score = db.zrange("thermo", 0, 0, withscores=True)[0]
            found = MEMBER.fullmatch(member)
            assert found and int(found[1]) == score, member

            def stored(since: int, until: int) -> set[int]:
                return {int(t) // 1000 for _, t in
                        db.zrangebyscore("thermo", since, until, withscores=True)}  # fmt: skip

            await outage(server, probe, stored)
            times = [int(s) for _, s in db.zrange("thermo", 0, -1, withscores=True)]
            assert times == sorted(times)
        db.close()


async def test_mysql_push_when_configured_stores_a_table_per_property(
    broker: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PASSWORD", "maria-s3cret")
    with mariadb_server("telemetry", "mapper", "maria-s3cret") as server:
        push = {"dbMethod": {"mysql": {"mysqlClientConfig": {
            "addr": f"127.0.0.1:{server.port}", "database": "telemetry",
            "userName": "mapper"}}}}  # fmt: skip

        def query(sql: str, *args: Any) -> list[tuple[Any, ...]]:
            try:
                conn = pymysql.connect(host="127.0.0.1", port=server.port, user="mapper",
                                       password="maria-s3cret", database="telemetry")  # fmt: skip
            except pymysql.err.OperationalError:
                return []  # restarting
            try:
                with conn.cursor() as cursor:
                    cursor.execute(sql, args)
                    return list(cursor.fetchall())
            except pymysql.err.ProgrammingError:
                return []  # no table yet
            finally:
                conn.close()

        table = "SELECT id, ts, field FROM `default/thermo/temperature`"
        async with serving(broker, push) as probe:
            await wait_until(lambda: len(query(table)) >= 3, within=20, what="rows in MariaDB")
            _, ts, field = query(table + " ORDER BY id LIMIT 1")[0]
            assert isinstance(ts, datetime.datetime) and float(field) >= 0

            def stored(since: int, until: int) -> set[int]:
                window = [datetime.datetime.fromtimestamp(t // 1000, datetime.UTC)
                          .strftime("%Y-%m-%d %H:%M:%S") for t in (since, until)]  # fmt: skip
                rows = query(table + " WHERE ts BETWEEN %s AND %s", *window)
                return {int(r[1].replace(tzinfo=datetime.UTC).timestamp()) for r in rows}

            await outage(server, probe, stored)
            rows = query(table + " ORDER BY id")
            assert [r[1] for r in rows] == sorted(r[1] for r in rows)  # delivered in order
