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
        self._wake = asyncio.Event()
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
        written = self._written.get(key)
        if written == status or (self._urgent is not None and self._urgent(written, status)):
            self._last.pop(key, None)  # due now: nothing to write, or someone waits for it
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                now = time.monotonic()
                due = [k for k in self._pending if now - self._last.get(k, -1e9) >= self.interval]
                for start in range(0, len(due), IN_FLIGHT):  # writes overlap, a few at a time
                    await asyncio.gather(*(self._flush(k) for k in due[start : start + IN_FLIGHT]))
                if self._pending:
                    soonest = min(self._last.get(k, 0.0) + self.interval for k in self._pending)
                    try:
                        await asyncio.wait_for(
                            self._wake.wait(), max(0.0, soonest - time.monotonic())
                        )
                        self._wake.clear()
                    except TimeoutError:
                        pass

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
                self._pending.setdefault(key, status)
                self._done.setdefault(key, []).extend(done)
                return
            self.writes += 1
            self._written[key] = status
        for callback in done:  # every report this write covered is now stored
            await callback()
