"""The heap keeper: what survives an older collection is frozen at once, the thaw collects
what became garbage since."""

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
    keeper = asyncio.create_task(keep_frozen(thaw_every=3600))
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
    keeper = asyncio.create_task(keep_frozen(thaw_every=0.01))
    try:
        await asyncio.sleep(0)
        del cycle
        await wait_until(lambda: ref() is None, what="the thaw's collection")
    finally:
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)


async def test_what_survives_an_older_collection_is_frozen_at_once() -> None:
    callbacks = list(gc.callbacks)
    keeper = asyncio.create_task(keep_frozen(thaw_every=3600))
    try:
        await asyncio.sleep(0)
        before = gc.get_freeze_count()
        kept = [Node() for _ in range(1000)]  # alive: they survive the collections
        gc.collect(0)  # the youngest generation's survivors are not frozen
        assert gc.get_freeze_count() == before
        gc.collect(1)
        assert gc.get_freeze_count() >= before + len(kept)
        more = [Node() for _ in range(1000)]
        gc.collect()
        assert gc.get_freeze_count() >= before + len(kept) + len(more)
    finally:
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)
    assert gc.get_freeze_count() == 0 and gc.callbacks == callbacks  # the keeper's is gone
