"""Telemetry history: every reported value, per device property, in the twin store's SQLite file
(table `history`), written in the same transaction as the twins it came with, so `kill -9`
keeps both or neither. Bounded: points older than the retention age go, and past the
per-property point budget the oldest go (`trim`, run when something was written since the last
trim). Queries give raw points or, with a step, min/max/mean per step of the numeric values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Column, Connection, Float, Index, Integer, MetaData, String, Table, Text

from devicetwin.model import Twin
from devicetwin.rules import TwinPatch

metadata = MetaData()
history_table = Table(
    "history",
    metadata,
    Column("deviceid", String(256), nullable=False),
    Column("name", String(128), nullable=False),
    Column("ts", Integer, nullable=False),  # ms since the epoch, as the twin's timestamp
    Column("value", Text, nullable=False),
    Column("num", Float),  # the value as a number, when it is one (what steps aggregate)
    Index("history_by_property", "deviceid", "name", "ts"),
)
Point = tuple[str, str, int, str]  # device id, property, ms, value
_INSERT = "INSERT INTO history (deviceid, name, ts, value, num) VALUES (?, ?, ?, ?, ?)"
MAX_POINTS_ANSWERED = 10_000  # raw points in one answer; ask with a step for more


@dataclass(frozen=True, slots=True)
class Retention:
    max_age_ms: int = 7 * 24 * 3600 * 1000  # a week
    max_points: int = 200_000  # per property (about two days of 1 s data)


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


def insert(conn: Connection, points: list[Point]) -> None:
    """The batch's points, straight to the driver (the ingest path)."""
    if points:
        conn.exec_driver_sql(_INSERT, [(*p, number(p[3])) for p in points])


def trim(conn: Connection, now_ms: int, retention: Retention) -> int:
    """Points past the age, then past each property's budget, removed; how many went."""
    removed = conn.exec_driver_sql(
        "DELETE FROM history WHERE ts < ?", (now_ms - retention.max_age_ms,)).rowcount  # fmt: skip
    crowded = conn.exec_driver_sql(
        "SELECT deviceid, name FROM history GROUP BY deviceid, name HAVING COUNT(*) > ?",
        (retention.max_points,)).fetchall()  # fmt: skip
    for device, name in crowded:
        removed += conn.exec_driver_sql(
            "DELETE FROM history WHERE rowid IN (SELECT rowid FROM history WHERE deviceid = ? "
            "AND name = ? ORDER BY ts DESC, rowid DESC LIMIT -1 OFFSET ?)",
            (device, name, retention.max_points)).rowcount  # fmt: skip
    return int(removed)


@dataclass(frozen=True, slots=True)
class Query:
    device: str
    name: str
    since: int  # ms, inclusive
    until: int  # ms, exclusive
    step: int = 0  # ms; 0 for raw points


def points(conn: Connection, query: Query) -> list[dict[str, object]]:
    """Raw points in time order, or per step the numeric values' min, max, mean and count
    (steps without numeric values are left out; a step starts at a multiple of `step`)."""
    where = (query.device, query.name, query.since, query.until)
    if not query.step:
        rows = conn.exec_driver_sql(
            "SELECT ts, value FROM history WHERE deviceid = ? AND name = ? AND ts >= ? AND ts < ?"
            " ORDER BY ts LIMIT ?", (*where, MAX_POINTS_ANSWERED)).fetchall()  # fmt: skip
        return [{"t": ts, "v": value} for ts, value in rows]
    rows = conn.exec_driver_sql(
        "SELECT (ts / ?) * ? AS t, MIN(num), MAX(num), AVG(num), COUNT(num) FROM history WHERE "
        "deviceid = ? AND name = ? AND ts >= ? AND ts < ? AND num IS NOT NULL GROUP BY t "
        "ORDER BY t LIMIT ?",
        (query.step, query.step, *where, MAX_POINTS_ANSWERED)).fetchall()  # fmt: skip
    return [{"t": t, "min": lo, "max": hi, "mean": mean, "count": n}
            for t, lo, hi, mean, n in rows]  # fmt: skip
