"""Object storage: SQLite (WAL) by default, PostgreSQL by URL.

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
)
from sqlalchemy.engine import Engine

from cloudcore.apiserver.arguments import CHANGE_LOG
from cloudcore.apiserver.sqlconn import Cursor, Sql
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


_GET = "SELECT data FROM objects WHERE resource = :r AND namespace = :ns AND name = :n"
_RV = "SELECT rv FROM objects WHERE resource = :r AND namespace = :ns AND name = :n"
_INSERT = (
    "INSERT INTO objects (resource, namespace, name, rv, uid, data) "
    "VALUES (:r, :ns, :n, :rv, :uid, :d)"
)
_OWNERS_DROP = "DELETE FROM owners WHERE resource = :r AND namespace = :ns AND name = :n"
_OWNERS_ADD = (
    "INSERT INTO owners (owner_uid, resource, namespace, name) VALUES (:owner, :r, :ns, :n)"
)
_OWNED = (
    "SELECT o.resource, o.data FROM owners w JOIN objects o ON o.resource = w.resource "
    "AND o.namespace = w.namespace AND o.name = w.name WHERE w.owner_uid = :owner"
)
_OWNERS_OF = "SELECT owner_uid FROM owners WHERE resource = :r AND namespace = :ns AND name = :n"
_BY_UID = "SELECT resource, data FROM objects WHERE uid = :uid"
_UPDATE = (
    "UPDATE objects SET rv = :rv, data = :d WHERE resource = :r AND namespace = :ns AND name = :n"
)
_UPDATE_AT = (  # only at the version the writer read: one statement, no read first
    "UPDATE objects SET rv = :rv, data = :d "
    "WHERE resource = :r AND namespace = :ns AND name = :n AND rv = :expected"
)
_DELETE = "DELETE FROM objects WHERE resource = :r AND namespace = :ns AND name = :n"
_LOG = "INSERT INTO changes (rv, resource, type, data) VALUES (:rv, :r, :t, :d)"
_TRIM = "DELETE FROM changes WHERE rv <= :floor"
_LIST = "SELECT data FROM objects WHERE resource = :r ORDER BY namespace, name"
_LIST_IN = "SELECT data FROM objects WHERE resource = :r AND namespace = :ns ORDER BY name"
_OLDEST = "SELECT min(rv) FROM changes"
_SINCE = "SELECT rv, type, data FROM changes WHERE resource = :r AND rv > :rv ORDER BY rv"
_NEWEST = "SELECT max(rv) FROM changes UNION ALL SELECT max(rv) FROM objects"


def _set_owners(tx: Cursor, key: dict[str, str], obj: dict[str, Any], create: bool) -> None:
    """The object's rows in `owners`, rewritten only when its owners changed (most updates are
    status writes that leave them as they were)."""
    refs = obj["metadata"].get("ownerReferences") or []
    uids = sorted({str(r["uid"]) for r in refs if isinstance(r, dict) and r.get("uid")})
    if not create:
        if sorted(str(row[0]) for row in tx.rows(_OWNERS_OF, key)) == uids:
            return
        tx.run(_OWNERS_DROP, key)
    for uid in uids:
        tx.run(_OWNERS_ADD, {**key, "owner": uid})


SEALED = frozenset({"/secrets"})  # resources stored encrypted (EncryptionConfiguration's usual)


class Store:
    """SQLAlchemy makes the schema; requests' statements go to the driver (`sqlconn`). The
    newest resourceVersion is recovered at start from the stored rows. With a `sealer`,
    Secrets are stored (objects and change log) sealed with it."""

    def __init__(self, url: str, history: int = CHANGE_LOG, sealer: Sealer | None = None) -> None:
        self.history, self.sealer = history, sealer
        self.engine = create_engine(url)
        if self.engine.dialect.name == "sqlite":
            _sqlite_pragmas(self.engine)
        metadata.create_all(self.engine)
        for index in owners.indexes:  # a store made before an index existed gets it now
            index.create(self.engine, checkfirst=True)
        self.sql = Sql(self.engine)
        newest = self.sql.rows(_NEWEST, {})
        self.rv = max([1, *(int(row[0]) for row in newest if row[0] is not None)])

    def close(self) -> None:
        self.sql.close()
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

    def _log(self, tx: Cursor, rv: int, resource: str, kind: str, data: str) -> None:
        tx.run(_LOG, {"rv": rv, "r": resource, "t": kind, "d": data})
        if rv % max(1, self.history // 50) == 0:  # trim now and then, not on every write
            tx.run(_TRIM, {"floor": rv - self.history})

    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        row = self.sql.first(_GET, {"r": resource, "ns": namespace, "n": name})
        return None if row is None else self._load(resource, row[0])

    def list(self, resource: str, namespace: str | None) -> tuple[list[dict[str, Any]], int]:
        if namespace is None:
            rows = self.sql.rows(_LIST, {"r": resource})
        else:
            rows = self.sql.rows(_LIST_IN, {"r": resource, "ns": namespace})
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
            with self.sql.transaction() as tx:
                if create:
                    uid = str(obj["metadata"].get("uid", ""))
                    tx.run(_INSERT, {**key, "rv": rv, "uid": uid, "d": data})
                else:
                    values = {**key, "rv": rv, "d": data}
                    if expected_rv is None:
                        updated = tx.run(_UPDATE, values)
                    else:
                        updated = tx.run(_UPDATE_AT, {**values, "expected": expected_rv})
                    if not updated:  # gone, or written by someone else since it was read
                        if tx.first(_RV, key) is None:
                            raise KeyError(name)
                        raise Conflict("changed")
                _set_owners(tx, key, obj, create)
                self._log(tx, rv, resource, "ADDED" if create else "MODIFIED", data)
        except self.sql.dbapi.IntegrityError:
            raise Conflict("exists") from None
        self.rv = rv
        return obj

    def delete(self, resource: str, namespace: str, name: str) -> dict[str, Any]:
        key = {"r": resource, "ns": namespace, "n": name}
        with self.sql.transaction() as tx:
            row = tx.first(_GET, key)
            if row is None:
                raise KeyError(name)
            obj = self._load(resource, row[0])
            rv = self.rv + 1
            obj["metadata"]["resourceVersion"] = str(rv)
            tx.run(_DELETE, key)
            tx.run(_OWNERS_DROP, key)
            self._log(tx, rv, resource, "DELETED", self._dump(resource, obj))
        self.rv = rv
        return obj

    def owned_by(self, uid: str) -> Sequence[tuple[str, dict[str, Any]]]:
        """(resource, object) of every object naming `uid` in its ownerReferences."""
        rows = self.sql.rows(_OWNED, {"owner": uid})
        return [(str(r[0]), self._load(str(r[0]), r[1])) for r in rows]

    def by_uid(self, uid: str) -> tuple[str, dict[str, Any]] | None:
        row = self.sql.first(_BY_UID, {"uid": uid})
        return None if row is None else (str(row[0]), self._load(str(row[0]), row[1]))

    def changes_since(self, rv: int, resource: str) -> Iterator[Change]:
        """Changes to `resource` after `rv`, oldest first; Gone when `rv` left the log."""
        oldest = self.sql.first(_OLDEST, {})[0]
        if oldest is not None and rv < int(oldest) - 1:
            raise Gone(f"too old resource version: {rv} ({int(oldest) - 1})")
        for row in self.sql.rows(_SINCE, {"r": resource, "rv": rv}):
            yield Change(int(row[0]), resource, str(row[1]), self._load(resource, row[2]))
