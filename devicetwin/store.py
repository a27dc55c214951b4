"""Twin store: SQLite (WAL) through SQLAlchemy Core, with KubeEdge's three tables.

    device       id (ns/name), name, description, state, last_online  (+ namespace, spec JSON)
    device_attr  deviceid, name, value, optional, attr_type, metadata
    device_twin  deviceid, name, expected/actual (+ _meta, _version), optional, attr_type,
                 metadata  (+ observed_desired, observed_desired_meta)

Writes come in batches (`Batch`), one transaction each, so `kill -9` leaves either the whole batch
or none of it. The in-memory devices of the twin service are the read path; SQLite is read once at
start-up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    select,
    update,
)
from sqlalchemy.dialects.sqlite import insert

from devicetwin import history
from devicetwin.model import Attempt, Device, DeviceId, PropertySpec, Twin, TwinValue, Version
from devicetwin.retention import Retention, Rule

SCHEMA_VERSION = 1
metadata = MetaData()

device_table = Table(
    "device",
    metadata,
    Column("id", String(256), primary_key=True),
    Column("name", String(253), nullable=False),
    Column("namespace", String(253), nullable=False),
    Column("description", Text, default=""),
    Column("state", String(32), default="unknown"),
    Column("last_online", String(64), default=""),
    Column("spec", Text, default="{}"),
)

attr_table = Table(
    "device_attr",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("deviceid", String(256), nullable=False, index=True),
    Column("name", String(128), nullable=False),
    Column("description", Text, default=""),
    Column("value", Text, default=""),
    Column("optional", Boolean, default=False),
    Column("attr_type", String(32), default="string"),
    Column("metadata", Text, default="{}"),
    UniqueConstraint("deviceid", "name"),
)

twin_table = Table(
    "device_twin",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("deviceid", String(256), nullable=False, index=True),
    Column("name", String(128), nullable=False),
    Column("description", Text, default=""),
    Column("expected", Text),
    Column("actual", Text),
    Column("expected_meta", Text),
    Column("actual_meta", Text),
    Column("expected_version", Text),
    Column("actual_version", Text),
    Column("optional", Boolean, default=True),
    Column("attr_type", String(32), default="string"),
    Column("metadata", Text, default="{}"),
    Column("observed_desired", Text),
    Column("observed_desired_meta", Text),
    UniqueConstraint("deviceid", "name"),
)

_TWIN_COLUMNS = [c.name for c in twin_table.columns if c.name not in ("id", "deviceid", "name")]
_UPSERT_TWIN = (
    f"INSERT INTO device_twin (deviceid, name, {', '.join(_TWIN_COLUMNS)}) "
    f"VALUES ({', '.join('?' * (len(_TWIN_COLUMNS) + 2))}) "
    "ON CONFLICT (deviceid, name) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _TWIN_COLUMNS)
)


@dataclass(slots=True)
class Batch:
    """Writes that must land together; the twin service fills one per processed burst."""

    twins: dict[tuple[DeviceId, str], Twin] = field(default_factory=dict)
    states: dict[DeviceId, Device] = field(default_factory=dict)
    devices: dict[DeviceId, Device] = field(default_factory=dict)
    removed: set[DeviceId] = field(default_factory=set)
    # devices whose status as the cloud shows it changed: told once the writes are durable
    changed: set[DeviceId] = field(default_factory=set)
    history: list[history.Point] = field(default_factory=list)  # every reported value

    def __bool__(self) -> bool:
        return bool(self.twins or self.states or self.devices or self.removed or self.history)


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _meta(value: TwinValue | None) -> str | None:
    return None if value is None else f'{{"timestamp":{value.timestamp}}}'


def _version(version: Version) -> str:
    return f'{{"cloud":{version.cloud},"edge":{version.edge}}}'


def twin_row(twin: Twin) -> dict[str, Any]:
    """A Twin as a device_twin row (without deviceid and name)."""
    return {
        "description": twin.description,
        "expected": None if twin.expected is None else twin.expected.value,
        "actual": None if twin.actual is None else twin.actual.value,
        "expected_meta": _meta(twin.expected),
        "actual_meta": _meta(twin.actual),
        "expected_version": _version(twin.expected_version),
        "actual_version": _version(twin.actual_version),
        "optional": twin.optional,
        "attr_type": twin.type,
        "metadata": _twin_metadata(twin),
        "observed_desired": None if twin.observed_desired is None else twin.observed_desired.value,
        "observed_desired_meta": _meta(twin.observed_desired),
    }


def _twin_metadata(twin: Twin) -> str:
    """KubeEdge's `{"type": ...}`, plus what the edge knows about reaching desired values."""
    kind = "deleted" if twin.deleted else twin.type
    if twin.attempt is None and not twin.error and twin.overruled is None:
        return f'{{"type":"{kind}"}}'  # the common case, without a JSON encoder
    extra: dict[str, Any] = {"type": kind}
    if twin.attempt is not None:
        extra["attempt"] = {"desired": twin.attempt.desired, "error": twin.attempt.error}
    if twin.error:
        extra["error"] = twin.error
    if twin.overruled is not None:
        extra["overruled"] = {"value": twin.overruled.value, "timestamp": twin.overruled.timestamp}
    return orjson.dumps(extra).decode()


def _extras(metadata: dict[str, Any]) -> tuple[Attempt | None, str, TwinValue | None]:
    attempt = metadata.get("attempt")
    overruled = metadata.get("overruled")
    return (
        None if not isinstance(attempt, dict) else Attempt(attempt["desired"], attempt["error"]),
        str(metadata.get("error", "")),
        None
        if not isinstance(overruled, dict)
        else TwinValue(overruled["value"], int(overruled["timestamp"])),
    )


def _value(value: str | None, meta: str | None) -> TwinValue | None:
    if value is None:
        return None
    return TwinValue(value, int(orjson.loads(meta or "{}").get("timestamp", 0)))


def _parse_version(raw: str | None) -> Version:
    data = orjson.loads(raw or "{}")
    return Version(int(data.get("cloud", 0)), int(data.get("edge", 0)))


def _twin_from_row(row: Any) -> Twin:
    metadata = orjson.loads(row.metadata or "{}")
    attempt, error, overruled = _extras(metadata)
    return Twin(
        name=row.name,
        type=row.attr_type,
        optional=bool(row.optional),
        deleted=metadata.get("type") == "deleted",
        expected=_value(row.expected, row.expected_meta),
        actual=_value(row.actual, row.actual_meta),
        observed_desired=_value(row.observed_desired, row.observed_desired_meta),
        expected_version=_parse_version(row.expected_version),
        actual_version=_parse_version(row.actual_version),
        description=row.description or "",
        attempt=attempt,
        error=error,
        overruled=overruled,
    )


def properties_of(spec: dict[str, Any]) -> dict[str, PropertySpec]:
    """Rebuild the model's property facts from a stored merged spec."""
    return {
        p["name"]: PropertySpec(
            name=p["name"],
            type=p.get("type", "string"),
            access_mode=p.get("accessMode", "ReadWrite"),
            minimum=p.get("minimum"),
            maximum=p.get("maximum"),
            unit=p.get("unit", ""),
            description=p.get("description", ""),
        )
        for p in spec.get("properties", [])
    }


class TwinStore:
    """Owns the SQLite file; used from one thread (the edgecore event loop)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._engine: Engine = create_engine(
            f"sqlite:///{path}", connect_args={"check_same_thread": False}
        )
        event.listen(self._engine, "connect", _on_connect)
        metadata.create_all(self._engine)
        history.metadata.create_all(self._engine)
        self._series: history.Series = {}  # series ids, known once written (committer's thread)
        with self._engine.begin() as conn:
            conn.exec_driver_sql(f"PRAGMA user_version={SCHEMA_VERSION}")

    def load(self) -> dict[DeviceId, Device]:
        """Every stored device with its attributes and twins."""
        with self._engine.connect() as conn:
            twins: dict[str, dict[str, Twin]] = {}
            for row in conn.execute(select(twin_table)):
                twins.setdefault(row.deviceid, {})[row.name] = _twin_from_row(row)
            attrs: dict[str, dict[str, str]] = {}
            for row in conn.execute(select(attr_table)):
                attrs.setdefault(row.deviceid, {})[row.name] = row.value or ""
            devices: dict[DeviceId, Device] = {}
            for row in conn.execute(select(device_table)):
                spec = orjson.loads(row.spec or "{}")
                devices[DeviceId(row.id)] = Device(
                    id=DeviceId(row.id),
                    name=row.name,
                    namespace=row.namespace,
                    description=row.description or "",
                    state=row.state or "unknown",
                    last_online=row.last_online or "",
                    protocol=spec.get("protocol", {}).get("protocolName", ""),
                    attributes=attrs.get(row.id, {}),
                    properties=properties_of(spec),
                    twins=twins.get(row.id, {}),
                    spec=spec,
                )
        return devices

    def commit(self, batch: Batch) -> None:
        """Write a batch in one transaction."""
        if not batch:
            return
        try:
            self._commit(batch)
        except Exception:
            self._series.clear()  # series made in the failed transaction are gone with it
            raise

    def _commit(self, batch: Batch) -> None:
        with self._engine.begin() as conn:
            if batch.removed:
                self._remove(conn, batch.removed)
            for device in batch.devices.values():
                self._replace_device(conn, device)
            if batch.twins:
                self._upsert_twins(conn, batch.twins.items())
            history.insert(conn, batch.history, self._series)
            for device in batch.states.values():
                conn.execute(
                    update(device_table)
                    .where(device_table.c.id == device.id)
                    .values(state=device.state, last_online=device.last_online)
                )

    def _remove(self, conn: Connection, ids: Iterable[DeviceId]) -> None:
        ids = list(ids)
        for table, column in (
            (twin_table, twin_table.c.deviceid),
            (attr_table, attr_table.c.deviceid),
            (device_table, device_table.c.id),
        ):
            conn.execute(delete(table).where(column.in_(ids)))

    def _replace_device(self, conn: Connection, device: Device) -> None:
        self._remove(conn, [device.id])
        conn.execute(
            insert(device_table).values(
                id=device.id,
                name=device.name,
                namespace=device.namespace,
                description=device.description,
                state=device.state,
                last_online=device.last_online,
                spec=orjson.dumps(device.spec).decode(),
            )
        )
        if device.attributes:
            conn.execute(
                insert(attr_table),
                [
                    {"deviceid": device.id, "name": key, "value": value, "attr_type": "string"}
                    for key, value in device.attributes.items()
                ],
            )
        if device.twins:
            self._upsert_twins(conn, (((device.id, n), t) for n, t in device.twins.items()))

    def _upsert_twins(
        self, conn: Connection, twins: Iterable[tuple[tuple[DeviceId, str], Twin]]
    ) -> None:
        # Straight to the driver's executemany: this is the ingest hot path, and SQLAlchemy's
        # per-row parameter processing cost more than SQLite itself.
        rows = []
        for (device, name), twin in twins:
            row = twin_row(twin)
            rows.append((device, name, *(row[column] for column in _TWIN_COLUMNS)))
        conn.exec_driver_sql(_UPSERT_TWIN, rows)

    def trim_history(self, now_ms: int, retention: Retention, rules: Mapping[str, Rule]) -> int:
        """Points past the retention removed (see `history.trim`); how many."""
        with self._engine.begin() as conn:
            return history.trim(conn, now_ms, retention, rules)

    def history(self, query: history.Query) -> list[dict[str, object]]:
        with self._engine.connect() as conn:
            return history.points(conn, query)

    def close(self) -> None:
        self._engine.dispose()
