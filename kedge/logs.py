"""Structured logs: one JSON object per line on stderr, with node/device/topic fields.

Call sites pass context through `extra={...}`; every non-standard record attribute becomes a key,
so `log.info("x", extra={"node": n, "device": d})` is searchable without parsing the message.
"""

from __future__ import annotations

import gc
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any

import orjson

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def setup_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


class Throttle:
    """At most one log line per key every `interval` seconds, so a client sending junk cannot
    fill the disk with refusals; the next line allowed says how many were held back."""

    def __init__(self, interval: float = 10.0, keys: int = 1024) -> None:
        self.interval, self.keys = interval, keys
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def allow(self, key: str, now: float | None = None) -> int | None:
        """None: do not log now; else the number of lines held back for `key` since."""
        now = time.monotonic() if now is None else now
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._held[key] = self._held.get(key, 0) + 1
            return None
        if len(self._last) >= self.keys and key not in self._last:
            self._last.clear()  # bounded: forget the oldest round of keys
            self._held.clear()
        self._last[key] = now
        return self._held.pop(key, 0)


def log_gc_pauses(logger: logging.Logger, over: float = 0.1) -> None:
    """Log every garbage collection that stopped the process for more than `over` seconds: in
    a process holding millions of objects (cloudcore with 10,000 sessions) a full collection
    stops everything, the event loop included, for seconds. `cpu_seconds` tells the collector's
    own work from time the process spent waiting for a core meanwhile."""
    started: list[float] = [0.0, 0.0]

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[:] = time.perf_counter(), time.thread_time()
            return
        took = time.perf_counter() - started[0]
        if took > over:
            logger.warning("garbage collection paused the process", extra={
                "seconds": round(took, 3), "generation": info.get("generation"),
                "cpu_seconds": round(time.thread_time() - started[1], 3),
                "collected": info.get("collected")})  # fmt: skip

    gc.callbacks.append(callback)
