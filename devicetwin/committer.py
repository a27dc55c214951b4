"""Group commit: SQLite writes on one worker thread, merged while a commit is in flight.

Callers hand over a Batch and await its durability. While one transaction runs on the worker
thread, later batches queue up and are merged into the next transaction, so the commit rate
adapts to load without adding latency when idle. Batches commit in submission order, and a
caller resumes only after its batch (or a merged transaction containing it) has committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from devicetwin.model import DeviceId
from devicetwin.store import Batch, TwinStore

T = TypeVar("T")


def merge(batches: list[Batch]) -> Batch:
    """One batch equivalent to applying `batches` in order (later rows replace earlier)."""
    merged = Batch()
    for batch in batches:
        for device_id in batch.removed:
            merged.devices.pop(device_id, None)
            merged.states.pop(device_id, None)
            for key in [k for k in merged.twins if k[0] == device_id]:
                del merged.twins[key]
        merged.removed |= batch.removed - set(batch.devices)
        merged.removed -= set(batch.devices)
        merged.devices.update(batch.devices)
        merged.twins.update(batch.twins)
        merged.states.update(batch.states)
        merged.changed |= batch.changed
        merged.history += batch.history
    return merged


class Committer:
    def __init__(
        self,
        store: TwinStore,
        on_failure: Callable[[], None],
        on_committed: Callable[[set[DeviceId]], None] = lambda _changed: None,
    ) -> None:
        """`on_committed(changed)`: after each durable commit, with the batches' `changed`."""
        self.store = store
        self._on_failure, self._on_committed = on_failure, on_committed
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="twin-store")
        self._queue: list[tuple[Batch, asyncio.Future[None]]] = []
        self._drainer: asyncio.Task[None] | None = None
        self.commits = 0
        self.rows = 0

    def submit(self, batch: Batch) -> asyncio.Future[None]:
        """A future that completes once `batch` is durable, or fails with the commit's error."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not batch:
            if batch.changed:
                self._on_committed(batch.changed)
            future.set_result(None)
            return future
        self._queue.append((batch, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain(), name="twin-store-commit")
        return future

    async def call(self, work: Callable[[], T]) -> T:
        """`work()` on the store's writer thread, after the commits already started."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    async def commit(self, batch: Batch) -> None:
        """Return once `batch` is durable; raise if its transaction failed."""
        await self.submit(batch)

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            group, self._queue = self._queue, []
            merged = merge([b for b, _ in group])
            try:
                await loop.run_in_executor(self._executor, self.store.commit, merged)
            except Exception as exc:
                # Memory already holds these changes (and maybe later ones): fail everything
                # queued and let the owner reload memory from disk before anything else runs.
                failed, self._queue = [*group, *self._queue], []
                for _, future in failed:
                    if not future.done():
                        future.set_exception(exc)
                self._on_failure()
                continue
            self.commits += 1
            self.rows += len(merged.twins) + len(merged.states) + len(merged.devices)
            if merged.changed:
                self._on_committed(merged.changed)
            for _, future in group:
                if not future.done():
                    future.set_result(None)

    async def close(self) -> None:
        if self._drainer is not None:
            await asyncio.gather(self._drainer, return_exceptions=True)
        self._executor.shutdown(wait=True)
