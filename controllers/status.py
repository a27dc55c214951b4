"""Device.status writes, coalesced so telemetry can never overload the API server.

Reports for one device replace each other while waiting (latest wins); each device is written
at most once per `interval` seconds, except for reports the `urgent` test picks (a desired
value just reached), and all devices together at most `qps` times a second (while waiting,
reports keep replacing each other); a status equal to the last one written is not written. The
writes are coroutines (the lean API path; `threaded` adapts a synchronous one).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("kedge.controllers")
Key = tuple[str, str]
IN_FLIGHT = 16  # writes at once (the lean path's connection pool)
RETRY = 1.0  # seconds at least between attempts at a write that failed
Write = Callable[[str, str, dict[str, Any]], Awaitable[None]]  # namespace, name, status


Urgent = Callable[[dict[str, Any] | None, dict[str, Any]], bool]  # (last written, new)


def desired_reached(written: dict[str, Any] | None, status: dict[str, Any]) -> bool:
    """A status in which a twin shows a new observedDesired, or newly shows its desired value
    reached (reported equals observedDesired): what someone who just set a value waits for.
    Rare (driven by desired writes, not telemetry), so written without waiting for the interval."""

    def twins(doc: dict[str, Any] | None) -> dict[Any, tuple[Any, bool]]:
        out = {}
        for entry in (doc or {}).get("twins") or []:
            if isinstance(entry, dict):
                observed = (entry.get("observedDesired") or {}).get("value")
                reported = (entry.get("reported") or {}).get("value")
                out[entry.get("propertyName")] = (observed, observed == reported)
        return out

    before = twins(written)
    for name, (observed, settled) in twins(status).items():
        was_observed, was_settled = before.get(name, (None, False))
        if observed is not None and (observed != was_observed or (settled and not was_settled)):
            return True
    return False


def threaded(write: Callable[[str, str, dict[str, Any]], None]) -> Write:
    """A synchronous write (the official client's) run in a worker thread."""

    async def run(namespace: str, name: str, status: dict[str, Any]) -> None:
        await asyncio.to_thread(write, namespace, name, status)

    return run


class TokenBucket:
    """`rate` per second on average, bursts of twice that (client-go's QPS and burst)."""

    def __init__(self, rate: float) -> None:
        self.rate, self.capacity = rate, 2 * rate
        self.tokens, self.stamp = self.capacity, time.monotonic()
        self._turn = asyncio.Lock()  # writers in flight take their tokens one after another

    async def take(self) -> None:
        async with self._turn:
            await self._take()

    async def _take(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            await asyncio.sleep((1 - self.tokens) / self.rate)  # rate limiting: the budget
            self.tokens, self.stamp = 1.0, time.monotonic()
        self.tokens -= 1


class StatusWriter:
    """Writers run continuously, IN_FLIGHT at once: a slow write holds only itself, never a
    batch. A device is queued when it is due; one still inside its interval is queued by a
    timer when the interval ends; a device is never written by two writers at once."""

    def __init__(
        self,
        write: Write,
        interval: float = 1.0,
        urgent: Urgent | None = None,
        qps: float | None = None,
    ) -> None:
        """`urgent(last written, new)`: a report to write at once, ahead of the interval.
        `qps`: writes per second for all devices together (bursts of twice that)."""
        self._write, self.interval, self._urgent = write, interval, urgent
        self._bucket = TokenBucket(qps) if qps else None
        self._pending: dict[Key, dict[str, Any]] = {}
        self._done: dict[Key, list[Callable[[], Awaitable[None]]]] = {}
        self._written: dict[Key, dict[str, Any]] = {}
        self._last: dict[Key, float] = {}
        self._ready: asyncio.Queue[Key] = asyncio.Queue()
        self._queued: set[Key] = set()  # in _ready
        self._busy: set[Key] = set()  # being written
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self.writes = 0  # API writes made, for benchmarks and tests

    @property
    def pending(self) -> int:
        """Reports waiting (0 once every report was written or found unchanged)."""
        return len(self._pending)

    def report(
        self,
        key: Key,
        status: dict[str, Any],
        done: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """The newest status of a device (replaces any report still waiting). `done` runs once
        the status is stored (written, or found unchanged), so a reporter can ack only then."""
        self._pending[key] = status
        if done is not None:
            self._done.setdefault(key, []).append(done)
        if self._urgent is not None and self._urgent(self._written.get(key), status):
            self._last.pop(key, None)  # someone waits for it: due now
        self._schedule(key)

    def _wait(self, key: Key) -> float:
        """Seconds until the device may be written (0: unchanged reports are acked at once)."""
        if self._pending[key] == self._written.get(key):
            return 0.0
        return self._last.get(key, -1e9) + self.interval - time.monotonic()

    def _schedule(self, key: Key) -> None:
        if key in self._queued or key in self._busy:
            return  # on its way already; it takes the newest report when its turn comes
        wait, timer = self._wait(key), self._timers.get(key)
        if timer is not None:
            if wait > 0:
                return
            timer.cancel()
            del self._timers[key]
        if wait > 0:
            self._timers[key] = asyncio.get_running_loop().call_later(wait, self._due, key)
            return
        self._queued.add(key)
        self._ready.put_nowait(key)

    def _due(self, key: Key) -> None:
        del self._timers[key]
        if key in self._pending:
            self._schedule(key)

    async def run(self) -> None:
        await asyncio.gather(*(self._writer() for _ in range(IN_FLIGHT)))

    async def _writer(self) -> None:
        while True:
            key = await self._ready.get()
            self._queued.discard(key)
            if key not in self._pending:
                continue
            if self._wait(key) > 0:  # replaced by a changed report since it was queued
                self._schedule(key)
                continue
            self._busy.add(key)
            try:
                await self._flush(key)
            finally:
                self._busy.discard(key)
            if key in self._pending:  # reported again while being written, or failed
                self._schedule(key)

    async def _flush(self, key: Key) -> None:
        if self._bucket is not None and self._written.get(key) != self._pending[key]:
            await self._bucket.take()  # the API's budget; newer reports still replace this one
        status = self._pending.pop(key)
        done = self._done.pop(key, [])
        if self._written.get(key) != status:  # unchanged: no write
            self._last[key] = time.monotonic()
            try:
                await self._write(key[0], key[1], status)
            except Exception as exc:  # noqa: BLE001 - kept and retried; the API may be away
                log.warning("status of %s/%s not written: %r", key[0], key[1], exc)
                self._last[key] += max(0.0, RETRY - self.interval)  # API away: no tight retry
                self._pending.setdefault(key, status)
                self._done.setdefault(key, []).extend(done)
                return
            self.writes += 1
            self._written[key] = status
        for callback in done:  # every report this write covered is now stored
            await callback()
