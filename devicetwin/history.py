"""Telemetry history: every reported value, per device property, in the twin store's SQLite
file (tables `history_series`, `history_points`), written in the same transaction as the twins
it came with, so `kill -9` keeps both or neither. Bounded: points older than the retention age
go, and past the per-property point budget the oldest go (`trim`, run when something was written
since the last trim). Queries give raw points or, with a step, min/max/mean per step of the
numeric values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import (
    Column,
    Connection,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from devicetwin.model import Twin
from devicetwin.retention import Retention, Rule, effective
from devicetwin.rules import TwinPatch

metadata = MetaData()
series_table = Table(  # a device property's points are one series, named by a small number
    "history_series",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("deviceid", String(256), nullable=False),
    Column("name", String(128), nullable=False),
    UniqueConstraint("deviceid", "name"),
)
points_table = Table(
    "history_points",
    metadata,
    Column("series", Integer, nullable=False),
    Column("ts", Integer, nullable=False),  # ms since the epoch, as the twin's timestamp
    Column("value", Text, nullable=False),
    Column("num", Float),  # the value as a number, when it is one (what steps aggregate)
    Index("history_by_series", "series", "ts"),
)
Point = tuple[str, str, int, str]  # device id, property, ms, value
Series = dict[tuple[str, str], int]  # (device id, property) -> series id, cached
_INSERT = "INSERT INTO history_points (series, ts, value, num) VALUES (?, ?, ?, ?)"
MAX_POINTS_ANSWERED = 100_000  # points in one answer (a day of 1 s data); a step for more


def readings(device: str, patches: Mapping[str, TwinPatch], twins: Mapping[str, Twin]
             ) -> list[Point]:  # fmt: skip
    """The reported values an accepted update carried (a desired write is not a reading)."""
    out = []
    for name, patch in patches.items():
        actual = twins[name].actual if name in twins else None
        if patch.actual is not None and actual is not None:
            out.append((device, name, actual.timestamp, actual.value))
    return out


def number(value: str) -> float | None:
    try:
        parsed = float(value)
    except ValueError:
        return None
    return parsed if math.isfinite(parsed) else None


def series_of(conn: Connection, device: str, name: str, create: bool) -> int | None:
    if create:
        conn.exec_driver_sql("INSERT OR IGNORE INTO history_series (deviceid, name) VALUES "
                             "(?, ?)", (device, name))  # fmt: skip
    row = conn.exec_driver_sql("SELECT id FROM history_series WHERE deviceid = ? AND name = ?",
                               (device, name)).first()  # fmt: skip
    return None if row is None else int(row[0])


def insert(conn: Connection, points: list[Point], known: Series) -> None:
    """The batch's points, straight to the driver (the ingest path); `known` caches series."""
    rows = []
    for device, name, ts, value in points:
        series = known.get((device, name))
        if series is None:
            series = known[(device, name)] = series_of(conn, device, name, True) or 0
        rows.append((series, ts, value, number(value)))
    if rows:
        conn.exec_driver_sql(_INSERT, rows)


def trim(conn: Connection, now_ms: int, base: Retention, rules: Mapping[str, Rule]) -> int:
    """Each series' points past the age, then past its budget, removed; how many went. `rules`:
    the devices' own retention (devicetwin.retention), by device id."""
    removed = 0
    found = conn.exec_driver_sql("SELECT id, deviceid, name FROM history_series").fetchall()
    for series, device, name in found:
        retention = effective(base, rules.get(device), name)
        removed += conn.exec_driver_sql(
            "DELETE FROM history_points WHERE series = ? AND ts < ?",
            (series, now_ms - retention.max_age_ms)).rowcount  # fmt: skip
        removed += conn.exec_driver_sql(
            "DELETE FROM history_points WHERE rowid IN (SELECT rowid FROM history_points WHERE "
            "series = ? ORDER BY ts DESC, rowid DESC LIMIT -1 OFFSET ?)",
            (series, retention.max_points)).rowcount  # fmt: skip
    return int(removed)


@dataclass(frozen=True, slots=True)
class Query:
    device: str
    name: str
    since: int  # ms, inclusive
    until: int  # ms, exclusive
    step: int = 0  # ms; 0 for raw points
    limit: int = MAX_POINTS_ANSWERED


def points(conn: Connection, query: Query) -> list[dict[str, object]]:
    """Raw points in time order, or per step the numeric values' min, max, mean and count
    (steps without numeric values are left out; a step starts at a multiple of `step`)."""
    series = series_of(conn, query.device, query.name, False)
    if series is None:
        return []
    where = (series, query.since, query.until)
    if not query.step:
        rows = conn.exec_driver_sql(
            "SELECT ts, value FROM history_points WHERE series = ? AND ts >= ? AND ts < ? "
            "ORDER BY ts LIMIT ?", (*where, query.limit)).fetchall()  # fmt: skip
        return [{"t": ts, "v": value} for ts, value in rows]
    rows = conn.exec_driver_sql(
        "SELECT (ts / ?) * ? AS t, MIN(num), MAX(num), AVG(num), COUNT(num) FROM history_points "
        "WHERE series = ? AND ts >= ? AND ts < ? AND num IS NOT NULL GROUP BY t ORDER BY t "
        "LIMIT ?", (query.step, query.step, *where, query.limit)).fetchall()  # fmt: skip
    return [{"t": t, "min": lo, "max": hi, "mean": mean, "count": n}
            for t, lo, hi, mean, n in rows]  # fmt: skip
