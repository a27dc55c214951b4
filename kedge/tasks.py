"""Long-running tasks that are watched, so that none stops its work silently while the process
looks healthy. A task that raises is logged and started again after a capped backoff; one that
raises a PermanentError (retrying cannot help) ends the process's wait (`fatal`) so the process
stops with that error. `failing` names the tasks that failed lately, for health endpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from kedge.backoff import Backoff, Sleep
from kedge.errors import PermanentError

log = logging.getLogger("kedge.tasks")
Work = Callable[[], Coroutine[Any, Any, None]]
HEALTHY_AFTER = 60.0  # seconds a restarted task must run before it counts as healthy again


class Tasks:
    def __init__(self, owner: str, sleep: Sleep = asyncio.sleep) -> None:
        """`owner` names the process in logs; `sleep` is the backoff's (a seam for tests)."""
        self.owner, self.sleep = owner, sleep
        self.running: dict[str, asyncio.Task[None]] = {}
        self.failures: dict[str, tuple[str, float]] = {}  # task -> (last error, when)
        self.restarts: dict[str, int] = {}
        self.fatal: asyncio.Future[PermanentError] = asyncio.get_running_loop().create_future()

    def start(self, name: str, work: Work, first: float = 0.5, cap: float = 30.0) -> None:
        """Run `work()` until it returns or is cancelled; restart it when it raises."""
        backoff = Backoff(first, cap, healthy_after=HEALTHY_AFTER, sleep=self.sleep)
        self.running[name] = asyncio.create_task(self._keep(name, work, backoff), name=name)

    async def _keep(self, name: str, work: Work, backoff: Backoff) -> None:
        while True:
            started = time.monotonic()
            try:
                await work()
                return
            except PermanentError as exc:
                log.error("%s task %r failed for good: %s", self.owner, name, exc,
                          extra={"task": name})  # fmt: skip
                self.failures[name] = (str(exc), time.monotonic())
                if not self.fatal.done():
                    self.fatal.set_result(exc)
                return
            except Exception as exc:  # noqa: BLE001 - the point: any other failure is survived
                self.failures[name] = (repr(exc), time.monotonic())
                self.restarts[name] = self.restarts.get(name, 0) + 1
                delay = backoff.next(time.monotonic() - started)
                log.exception("%s task %r failed; restarting in %.1fs", self.owner, name, delay,
                              extra={"task": name})  # fmt: skip
                await backoff.sleep(delay)  # the backoff between restarts

    def failing(self) -> dict[str, str]:
        """The tasks that failed within the last HEALTHY_AFTER seconds, with their errors."""
        now = time.monotonic()
        return {n: e for n, (e, when) in self.failures.items() if now - when < HEALTHY_AFTER}

    async def stop(self) -> None:
        for task in self.running.values():
            task.cancel()
        for task in self.running.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.running.clear()
