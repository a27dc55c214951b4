"""uvicorn, woken once a second instead of ten times.

uvicorn's main loop sleeps 0.1 s between checks of `should_exit` (and refreshes the Date header
every tenth check): ten wake-ups a second per server, in every process, with nothing to do. A
settled system must rest, so the check runs once a second; stopping takes up to a second more.
"""

from __future__ import annotations

import asyncio

import uvicorn

TICK = 1.0


class Server(uvicorn.Server):
    async def main_loop(self) -> None:
        while True:
            if await self.on_tick(0):  # counter 0: the Date header is refreshed every tick
                return
            await asyncio.sleep(TICK)  # the shutdown check's period
