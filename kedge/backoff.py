"""Capped exponential backoff, the one every retry and restart loop uses.

`next()` only counts (tests read the delays without waiting); `pause()` also sleeps through
`sleep`, the seam a test replaces to drive a loop without real time passing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

Sleep = Callable[[float], Awaitable[None]]


class Backoff:
    """`free` immediate retries, then `first`, doubling up to `cap`. `reset()` after a success
    starts over; so does `next(ran_for)` when the attempt had run `healthy_after` seconds."""

    def __init__(
        self,
        first: float = 0.1,
        cap: float = 5.0,
        *,
        free: int = 0,
        healthy_after: float | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.first, self.cap, self.free, self.healthy_after = first, cap, free, healthy_after
        self.sleep = sleep
        self.failures = 0

    def next(self, ran_for: float | None = None) -> float:
        """The delay before the next attempt; `ran_for`: how long the failed attempt lasted."""
        if ran_for is not None and self.healthy_after is not None and ran_for >= self.healthy_after:
            self.reset()
        self.failures += 1
        return self._delay(self.failures)

    @property
    def upcoming(self) -> float:
        """What `next()` would return now, without counting (for log lines)."""
        return self._delay(self.failures + 1)

    def _delay(self, failures: int) -> float:
        paid = failures - self.free
        return 0.0 if paid <= 0 else float(min(self.first * 2 ** min(paid - 1, 62), self.cap))

    def reset(self) -> None:
        self.failures = 0

    async def pause(self, ran_for: float | None = None) -> float:
        """Sleep the next delay; returns it."""
        delay = self.next(ran_for)
        await self.sleep(delay)  # the backoff between attempts
        return delay
