"""Object storage through SQLAlchemy: SQLite (WAL) by default, PostgreSQL by URL.

Every write takes the next value of one counter as the object's resourceVersion and records the
change, so resourceVersions are monotonic across all objects and a watch can resume from any
version still in the change log. The log keeps the newest CHANGE_LOG entries; older versions
are "too old" (410 Gone), as etcd compaction makes them in Kubernetes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine

CHANGE_LOG = 50_000

metadata = MetaData()
objects = Table(
    "objects",
    metadata,
    Column("resource", String, primary_key=True),  # group/plural, version independent
    Column("namespace", String, primary_key=True),  # "" for cluster-scoped
    Column("name", String, primary_key=True),
    Column("rv", Integer, nullable=False),
    Column("data", Text, nullable=False),
)
changes = Table(
    "changes",
    metadata,
    Column("rv", Integer, primary_key=True),
    Column("resource", String, nullable=False, index=True),
    Column("type", String, nullable=False),  # ADDED, MODIFIED, DELETED
    Column("data", Text, nullable=False),
)
counter = Table(
    "counter",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("rv", Integer, nullable=False),
)


class Conflict(Exception):
    """The object exists (create) or changed since the caller read it (update)."""


class Gone(Exception):
    """The requested resourceVersion is older than the change log."""


@dataclass(frozen=True, slots=True)
class Change:
    rv: int
    resource: str
    type: str
    object: dict[str, Any]


def _dumps(obj: dict[str, Any]) -> str:
    return orjson.dumps(obj).decode()


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across kill -9
        cursor.close()


class Store:
    def __init__(self, url: str, history: int = CHANGE_LOG) -> None:
        self.history = history
        self.engine = create_engine(url)
        if self.engine.dialect.name == "sqlite":
            _sqlite_pragmas(self.engine)
        metadata.create_all(self.engine)
        with self.engine.begin() as conn:
            if conn.execute(select(counter.c.rv)).first() is None:
                conn.execute(insert(counter).values(id=1, rv=1))
            self.rv = int(conn.execute(select(counter.c.rv)).scalar_one())
            oldest = conn.execute(select(func.min(changes.c.rv))).scalar()
            self.oldest = int(oldest) if oldest is not None else self.rv

    def close(self) -> None:
        self.engine.dispose()

    def _next_rv(self, conn: Connection) -> int:
        rv = self.rv + 1
        conn.execute(update(counter).where(counter.c.id == 1).values(rv=rv))
        return rv

    def _log(self, conn: Connection, rv: int, resource: str, kind: str, data: str) -> None:
        conn.execute(insert(changes).values(rv=rv, resource=resource, type=kind, data=data))
        if rv % max(1, self.history // 50) == 0:  # trim now and then, not on every write
            floor = rv - self.history
            conn.execute(delete(changes).where(changes.c.rv <= floor))

    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(objects.c.data).where(
                    objects.c.resource == resource,
                    objects.c.namespace == namespace,
                    objects.c.name == name,
                )
            ).first()
        return None if row is None else dict(orjson.loads(row[0]))

    def list(self, resource: str, namespace: str | None) -> tuple[list[dict[str, Any]], int]:
        query = select(objects.c.data).where(objects.c.resource == resource)
        if namespace is not None:
            query = query.where(objects.c.namespace == namespace)
        query = query.order_by(objects.c.namespace, objects.c.name)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [orjson.loads(row[0]) for row in rows], self.rv

    def write(
        self,
        resource: str,
        namespace: str,
        name: str,
        obj: dict[str, Any],
        expected_rv: int | None,
        create: bool,
    ) -> dict[str, Any]:
        """Create (must not exist) or update (must exist, at `expected_rv` when given)."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(objects.c.rv).where(
                    objects.c.resource == resource,
                    objects.c.namespace == namespace,
                    objects.c.name == name,
                )
            ).first()
            if create and row is not None:
                raise Conflict("exists")
            if not create and row is None:
                raise KeyError(name)
            if not create and expected_rv is not None and row is not None and row[0] != expected_rv:
                raise Conflict("changed")
            rv = self._next_rv(conn)
            obj["metadata"]["resourceVersion"] = str(rv)
            data = _dumps(obj)
            if create:
                conn.execute(
                    insert(objects).values(
                        resource=resource, namespace=namespace, name=name, rv=rv, data=data
                    )
                )
            else:
                conn.execute(
                    update(objects)
                    .where(
                        objects.c.resource == resource,
                        objects.c.namespace == namespace,
                        objects.c.name == name,
                    )
                    .values(rv=rv, data=data)
                )
            self._log(conn, rv, resource, "ADDED" if create else "MODIFIED", data)
        self.rv = rv
        return obj

    def delete(self, resource: str, namespace: str, name: str) -> dict[str, Any]:
        with self.engine.begin() as conn:
            row = conn.execute(
                select(objects.c.data).where(
                    objects.c.resource == resource,
                    objects.c.namespace == namespace,
                    objects.c.name == name,
                )
            ).first()
            if row is None:
                raise KeyError(name)
            obj = dict(orjson.loads(row[0]))
            rv = self._next_rv(conn)
            obj["metadata"]["resourceVersion"] = str(rv)
            conn.execute(
                delete(objects).where(
                    objects.c.resource == resource,
                    objects.c.namespace == namespace,
                    objects.c.name == name,
                )
            )
            self._log(conn, rv, resource, "DELETED", _dumps(obj))
        self.rv = rv
        return obj

    def changes_since(self, rv: int, resource: str) -> Iterator[Change]:
        """Changes to `resource` after `rv`, oldest first; Gone when `rv` left the log."""
        with self.engine.connect() as conn:
            oldest = conn.execute(select(func.min(changes.c.rv))).scalar()
            if oldest is not None and rv < int(oldest) - 1:
                raise Gone(f"too old resource version: {rv} ({int(oldest) - 1})")
            rows = conn.execute(
                select(changes.c.rv, changes.c.type, changes.c.data)
                .where(changes.c.resource == resource, changes.c.rv > rv)
                .order_by(changes.c.rv)
            ).all()
        for row in rows:
            yield Change(int(row[0]), resource, str(row[1]), orjson.loads(row[2]))
