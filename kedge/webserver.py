"""uvicorn, woken once a second instead of ten times.

uvicorn's main loop sleeps 0.1 s between checks of `should_exit` (and refreshes the Date header
every tenth check): ten wake-ups a second per server, in every process, with nothing to do. A
settled system must rest, so the check runs once a second; `stop()` ends the wait at once.
"""

from __future__ import annotations

import asyncio

import uvicorn

TICK = 1.0


class Server(uvicorn.Server):
    _stopping: asyncio.Event | None = None

    def stop(self) -> None:
        """Shut down now, not at the next tick (uvicorn's own signal handling still works)."""
        self.should_exit = True
        if self._stopping is not None:
            self._stopping.set()

    async def main_loop(self) -> None:
        self._stopping = asyncio.Event()
        while True:
            if await self.on_tick(0):  # counter 0: the Date header is refreshed every tick
                return
            try:  # the shutdown check's period, cut short by stop()
                await asyncio.wait_for(self._stopping.wait(), TICK)
            except TimeoutError:
                continue
