"""Garbage collection for a process that holds millions of long-lived objects.

cloudcore keeps every Device, Node and session in memory. CPython's full collections scan all
of them and, as they are long-lived and mostly acyclic, free nothing: measured with 10,000
nodes they stopped the event loop for 0.4-1.5 s every few seconds while the nodes connected,
and for seconds at a time later (a SIGTERM waited 4.4 s for its handler). So what is alive is
frozen every FREEZE_EVERY seconds (O(1): the collector's lists are moved, not walked), and
collections scan only what is newer. Cycles that become garbage after being frozen wait for
the hourly thaw, one full collection, so memory cannot grow without bound.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

log = logging.getLogger("kedge.heap")
FREEZE_EVERY = 10.0
THAW_EVERY = 3600.0


async def keep_frozen(every: float = FREEZE_EVERY, thaw_every: float = THAW_EVERY) -> None:
    """Until cancelled; the thawed collection is logged (it is the one long pause left)."""
    thawed = time.monotonic()
    gc.freeze()
    try:
        while True:
            await asyncio.sleep(every)  # the freezing period, not a wait for a condition
            if time.monotonic() - thawed >= thaw_every:
                gc.unfreeze()
                started = time.perf_counter()
                freed = gc.collect()
                took = round(time.perf_counter() - started, 3)
                log.info("heap thawed and collected", extra={"seconds": took, "freed": freed})
                thawed = time.monotonic()
            gc.freeze()
    finally:
        gc.unfreeze()
