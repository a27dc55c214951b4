"""Object storage through SQLAlchemy: SQLite (WAL) by default, PostgreSQL by URL.

Every write takes the next value of one counter as the object's resourceVersion and records the
change, so resourceVersions are monotonic across all objects and a watch can resume from any
version still in the change log. The log keeps the newest CHANGE_LOG entries; older versions
are "too old" (410 Gone), as etcd compaction makes them in Kubernetes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import (
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    select,
    text,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from cloudcore.apiserver.arguments import CHANGE_LOG
from kedge.sealing import PREFIX, Sealer, SealError

metadata = MetaData()
objects = Table(
    "objects",
    metadata,
    Column("resource", String, primary_key=True),  # group/plural, version independent
    Column("namespace", String, primary_key=True),  # "" for cluster-scoped
    Column("name", String, primary_key=True),
    Column("rv", Integer, nullable=False),
    Column("uid", String, nullable=False, index=True),
    Column("data", Text, nullable=False),
)
owners = Table(  # ownerReferences, indexed: garbage collection finds dependents without a scan
    "owners",
    metadata,
    Column("owner_uid", String, nullable=False, index=True),
    Column("resource", String, nullable=False),
    Column("namespace", String, nullable=False),
    Column("name", String, nullable=False),
    # an update finds its object's rows by this, not by a scan of every owned object
    Index("ix_owners_object", "resource", "namespace", "name"),
)
changes = Table(
    "changes",
    metadata,
    Column("rv", Integer, primary_key=True),
    Column("resource", String, nullable=False, index=True),
    Column("type", String, nullable=False),  # ADDED, MODIFIED, DELETED
    Column("data", Text, nullable=False),
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


_GET = text("SELECT data FROM objects WHERE resource = :r AND namespace = :ns AND name = :n")
_RV = text("SELECT rv FROM objects WHERE resource = :r AND namespace = :ns AND name = :n")
_INSERT = text(
    "INSERT INTO objects (resource, namespace, name, rv, uid, data) "
    "VALUES (:r, :ns, :n, :rv, :uid, :d)"
)
_OWNERS_DROP = text("DELETE FROM owners WHERE resource = :r AND namespace = :ns AND name = :n")
_OWNERS_ADD = text(
    "INSERT INTO owners (owner_uid, resource, namespace, name) VALUES (:owner, :r, :ns, :n)"
)
_OWNED = text(
    "SELECT o.resource, o.data FROM owners w JOIN objects o ON o.resource = w.resource "
    "AND o.namespace = w.namespace AND o.name = w.name WHERE w.owner_uid = :owner"
)
_OWNERS_OF = text(
    "SELECT owner_uid FROM owners WHERE resource = :r AND namespace = :ns AND name = :n"
)
_BY_UID = text("SELECT resource, data FROM objects WHERE uid = :uid")
_UPDATE = text(
    "UPDATE objects SET rv = :rv, data = :d WHERE resource = :r AND namespace = :ns AND name = :n"
)
_UPDATE_AT = text(  # only at the version the writer read: one statement, no read first
    "UPDATE objects SET rv = :rv, data = :d "
    "WHERE resource = :r AND namespace = :ns AND name = :n AND rv = :expected"
)
_DELETE = text("DELETE FROM objects WHERE resource = :r AND namespace = :ns AND name = :n")
_LOG = text("INSERT INTO changes (rv, resource, type, data) VALUES (:rv, :r, :t, :d)")
_TRIM = text("DELETE FROM changes WHERE rv <= :floor")


def _set_owners(conn: Connection, key: dict[str, str], obj: dict[str, Any], create: bool
                ) -> None:  # fmt: skip
    """The object's rows in `owners`, rewritten only when its owners changed (most updates are
    status writes that leave them as they were)."""
    refs = obj["metadata"].get("ownerReferences") or []
    uids = sorted({str(r["uid"]) for r in refs if isinstance(r, dict) and r.get("uid")})
    if not create:
        if sorted(str(row[0]) for row in conn.execute(_OWNERS_OF, key)) == uids:
            return
        conn.execute(_OWNERS_DROP, key)
    for uid in uids:
        conn.execute(_OWNERS_ADD, {**key, "owner": uid})


SEALED = frozenset({"/secrets"})  # resources stored encrypted (EncryptionConfiguration's usual)


class Store:
    """Statements are prepared text: building SQLAlchemy expressions per write cost more than
    SQLite itself. The newest resourceVersion is recovered at start from the stored rows.
    With a `sealer`, Secrets are stored (objects and change log) sealed with it."""

    def __init__(self, url: str, history: int = CHANGE_LOG, sealer: Sealer | None = None) -> None:
        self.history, self.sealer = history, sealer
        self.engine = create_engine(url)
        if self.engine.dialect.name == "sqlite":
            _sqlite_pragmas(self.engine)
        metadata.create_all(self.engine)
        for index in owners.indexes:  # a store made before an index existed gets it now
            index.create(self.engine, checkfirst=True)
        with self.engine.begin() as conn:
            newest = [
                conn.execute(select(func.max(changes.c.rv))).scalar(),
                conn.execute(select(func.max(objects.c.rv))).scalar(),
            ]
        self.rv = max([1, *(int(v) for v in newest if v is not None)])

    def close(self) -> None:
        self.engine.dispose()

    def _dump(self, resource: str, obj: dict[str, Any]) -> str:
        data = _dumps(obj)
        if self.sealer is None or resource not in SEALED:
            return data
        return self.sealer.seal(data, resource)  # the resource is authenticated with it

    def _load(self, resource: str, data: str) -> dict[str, Any]:
        if data.startswith(PREFIX):
            if self.sealer is None:
                raise SealError(f"a sealed {resource} object, and no key to open it")
            data = self.sealer.open(data, resource)
        return dict(orjson.loads(data))

    def _log(self, conn: Connection, rv: int, resource: str, kind: str, data: str) -> None:
        conn.execute(_LOG, {"rv": rv, "r": resource, "t": kind, "d": data})
        if rv % max(1, self.history // 50) == 0:  # trim now and then, not on every write
            conn.execute(_TRIM, {"floor": rv - self.history})

    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(_GET, {"r": resource, "ns": namespace, "n": name}).first()
        return None if row is None else self._load(resource, row[0])

    def list(self, resource: str, namespace: str | None) -> tuple[list[dict[str, Any]], int]:
        query = select(objects.c.data).where(objects.c.resource == resource)
        if namespace is not None:
            query = query.where(objects.c.namespace == namespace)
        query = query.order_by(objects.c.namespace, objects.c.name)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [self._load(resource, row[0]) for row in rows], self.rv

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
        key = {"r": resource, "ns": namespace, "n": name}
        rv = self.rv + 1
        obj["metadata"]["resourceVersion"] = str(rv)
        data = self._dump(resource, obj)
        try:
            with self.engine.begin() as conn:
                if create:
                    uid = str(obj["metadata"].get("uid", ""))
                    conn.execute(_INSERT, {**key, "rv": rv, "uid": uid, "d": data})
                else:
                    values = {**key, "rv": rv, "d": data}
                    if expected_rv is None:
                        updated = conn.execute(_UPDATE, values).rowcount
                    else:
                        updated = conn.execute(_UPDATE_AT, {**values, "expected": expected_rv}
                                               ).rowcount  # fmt: skip
                    if not updated:  # gone, or written by someone else since it was read
                        if conn.execute(_RV, key).first() is None:
                            raise KeyError(name)
                        raise Conflict("changed")
                _set_owners(conn, key, obj, create)
                self._log(conn, rv, resource, "ADDED" if create else "MODIFIED", data)
        except IntegrityError:
            raise Conflict("exists") from None
        self.rv = rv
        return obj

    def delete(self, resource: str, namespace: str, name: str) -> dict[str, Any]:
        key = {"r": resource, "ns": namespace, "n": name}
        with self.engine.begin() as conn:
            row = conn.execute(_GET, key).first()
            if row is None:
                raise KeyError(name)
            obj = self._load(resource, row[0])
            rv = self.rv + 1
            obj["metadata"]["resourceVersion"] = str(rv)
            conn.execute(_DELETE, key)
            conn.execute(_OWNERS_DROP, key)
            self._log(conn, rv, resource, "DELETED", self._dump(resource, obj))
        self.rv = rv
        return obj

    def owned_by(self, uid: str) -> Sequence[tuple[str, dict[str, Any]]]:
        """(resource, object) of every object naming `uid` in its ownerReferences."""
        with self.engine.connect() as conn:
            rows = conn.execute(_OWNED, {"owner": uid}).all()
        return [(str(r[0]), self._load(str(r[0]), r[1])) for r in rows]

    def by_uid(self, uid: str) -> tuple[str, dict[str, Any]] | None:
        with self.engine.connect() as conn:
            row = conn.execute(_BY_UID, {"uid": uid}).first()
        return None if row is None else (str(row[0]), self._load(str(row[0]), row[1]))

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
            yield Change(int(row[0]), resource, str(row[1]), self._load(resource, row[2]))
