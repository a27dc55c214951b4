"""The heap keeper: what is alive gets frozen, the thaw collects what became garbage since."""

from __future__ import annotations

import asyncio
import gc
import weakref

from harness.support import wait_until
from kedge.heap import keep_frozen


class Node:
    """An object in a reference cycle, as sessions and tasks often are."""

    def __init__(self) -> None:
        self.me = self


async def test_a_frozen_cycle_outlives_collections_until_the_keeper_stops() -> None:
    cycle = Node()
    ref = weakref.ref(cycle)
    keeper = asyncio.create_task(keep_frozen(every=0.01, thaw_every=3600))
    try:
        await asyncio.sleep(0)  # the keeper's first freeze
        assert gc.get_freeze_count() > 0
        del cycle
        gc.collect()
        assert ref() is not None  # frozen: full collections do not scan it
    finally:
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)
    assert gc.get_freeze_count() == 0  # thawed when the keeper stops
    gc.collect()
    assert ref() is None


async def test_the_thaw_frees_cycles_that_became_garbage_while_frozen() -> None:
    cycle = Node()
    ref = weakref.ref(cycle)
    keeper = asyncio.create_task(keep_frozen(every=0.01, thaw_every=0))
    try:
        await asyncio.sleep(0)
        del cycle
        await wait_until(lambda: ref() is None, what="the thaw's collection")
    finally:
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)
