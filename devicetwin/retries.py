"""Bounded delta retries. Pure: the clock is injected.

A delta goes out when a desired value changes; QoS 0 may lose it and a device may not take the
value (clamped, rounded, refused, busy), so while a twin stays out of sync its delta is sent
again after 1 s, 2 s, 4 s, ... up to 5 minutes. A new desired value starts the series over; a
reached one ends it. An unreachable value therefore costs one delta per interval, never a storm.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from devicetwin.model import DeviceId
from kedge.backoff import Backoff

INITIAL = 1.0  # seconds to the first retry
MAXIMUM = 300.0  # the cap on the interval
Key = tuple[DeviceId, str]


@dataclass(slots=True)
class _Series:
    value: str  # the desired value being retried
    due: float  # monotonic time of the next retry
    backoff: Backoff


class DeltaRetries:
    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        initial: float = INITIAL,
        maximum: float = MAXIMUM,
    ) -> None:
        self.clock, self.initial, self.maximum = clock, initial, maximum
        self._series: dict[Key, _Series] = {}
        self.on_change: Callable[[], None] = lambda: None  # the schedule moved earlier

    def __len__(self) -> int:
        return len(self._series)

    def sent(self, key: Key, value: str) -> None:
        """A delta for `value` went out; a value already being retried keeps its schedule."""
        series = self._series.get(key)
        if series is not None and series.value == value:
            return
        backoff = Backoff(self.initial, self.maximum)
        self._series[key] = _Series(value, self.clock() + backoff.next(), backoff)
        self.on_change()

    def settled(self, key: Key) -> None:
        """The twin reached its desired value (or has none): no more retries."""
        self._series.pop(key, None)

    def forget(self, device: DeviceId) -> None:
        for key in [k for k in self._series if k[0] == device]:
            del self._series[key]

    def wait(self) -> float | None:
        """Seconds until the next retry is due (None: nothing to retry)."""
        if not self._series:
            return None
        return max(0.0, min(s.due for s in self._series.values()) - self.clock())

    def due(self) -> list[tuple[Key, str]]:
        """The retries due now, each rescheduled at twice its interval (capped)."""
        now, out = self.clock(), []
        for key, series in self._series.items():
            if series.due <= now:
                out.append((key, series.value))
                series.due = now + series.backoff.next()
        return out
