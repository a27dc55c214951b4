"""Watches: the changes since a resourceVersion from the store's history, then live ones from a
fan-out hub; bookmarks; the watch-list protocol (sendInitialEvents)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cloudcore.apiserver import errors
from cloudcore.apiserver.listing import ListOptions
from cloudcore.apiserver.patch import copy_json
from cloudcore.apiserver.resources import ResourceType
from cloudcore.apiserver.store import Change, Gone

if TYPE_CHECKING:
    from cloudcore.apiserver.service import ApiService

Obj = dict[str, Any]
WATCH_QUEUE = 10_000  # events buffered per watcher before it is dropped as too slow
BOOKMARK_EVERY = 30.0  # seconds between bookmarks on a quiet watch that asked for them


@dataclass(eq=False)
class Watcher:
    key: str
    queue: asyncio.Queue[Change | None] = field(default_factory=lambda: asyncio.Queue(WATCH_QUEUE))


class Hub:
    """Fan-out of changes to live watchers; a watcher that falls too far behind is closed."""

    def __init__(self) -> None:
        self._watchers: dict[str, set[Watcher]] = {}

    def subscribe(self, key: str) -> Watcher:
        watcher = Watcher(key)
        self._watchers.setdefault(key, set()).add(watcher)
        return watcher

    def unsubscribe(self, watcher: Watcher) -> None:
        self._watchers.get(watcher.key, set()).discard(watcher)

    def publish(self, change: Change) -> None:
        for watcher in list(self._watchers.get(change.resource, ())):
            try:
                watcher.queue.put_nowait(change)
            except asyncio.QueueFull:
                self.unsubscribe(watcher)
                watcher.queue = asyncio.Queue(1)
                watcher.queue.put_nowait(None)  # ends that watch; the client re-lists


@dataclass(frozen=True, slots=True)
class WatchRequest:
    kind: ResourceType
    namespace: str | None
    options: ListOptions
    resource_version: str
    bookmarks: bool
    seconds: float
    initial_events: bool = False


def bookmark(kind: ResourceType, rv: int) -> Obj:
    return {
        "kind": kind.kind,
        "apiVersion": kind.api_version,
        "metadata": {
            "resourceVersion": str(rv),
            "annotations": {"k8s.io/initial-events-end": "true"},
        },
    }


async def watch(api: ApiService, request: WatchRequest) -> AsyncIterator[tuple[str, Obj]]:
    """(event type, object) pairs: ERROR with a 410 Status when the version is too old.

    With `initial_events` (sendInitialEvents, the watch-list protocol) the current state comes
    first as ADDED events and a BOOKMARK marks its end."""
    kind = request.kind
    watcher = api.hub.subscribe(kind.key)
    try:
        last = -1
        async for event in _start(api, request):
            if isinstance(event, int):
                last = event  # where the live changes take over
            else:
                yield event
        if last < 0:
            return
        async for event in _live(api, request, watcher, last):
            yield event
    finally:
        api.hub.unsubscribe(watcher)


async def _start(api: ApiService, request: WatchRequest) -> AsyncIterator[tuple[str, Obj] | int]:
    """The events before the live ones, then the resourceVersion they end at (none if gone)."""
    kind, options = request.kind, request.options
    if request.resource_version in ("", "0") or request.initial_events:
        items, rv, _ = api.list_items(kind, request.namespace,
                                      ListOptions(options.labels, options.fields))  # fmt: skip
        for item in items:
            yield "ADDED", item
        if request.initial_events and request.bookmarks:
            yield "BOOKMARK", bookmark(kind, int(rv))
        yield int(rv)
        return
    if not api.valid_version(request.resource_version):
        raise errors.bad_request(f"invalid resourceVersion {request.resource_version!r}")
    last = int(request.resource_version)
    try:
        backlog = list(api.store.changes_since(last, kind.key))
    except Gone as exc:
        yield "ERROR", errors.gone(str(exc)).status()
        return
    for change in backlog:
        last = change.rv
        if options.matches(change.object, request.namespace):
            yield change.type, api.served(kind, change.object)
    yield last


async def _live(api: ApiService, request: WatchRequest, watcher: Watcher, last: int
                ) -> AsyncIterator[tuple[str, Obj]]:  # fmt: skip
    kind, loop = request.kind, asyncio.get_running_loop()
    deadline = loop.time() + request.seconds
    while (remaining := deadline - loop.time()) > 0:
        try:
            wait = min(remaining, BOOKMARK_EVERY) if request.bookmarks else remaining
            async with asyncio.timeout(wait):
                live = await watcher.queue.get()
        except TimeoutError:
            if request.bookmarks and loop.time() < deadline:
                yield "BOOKMARK", bookmark(kind, api.store.rv)
            continue
        if live is None:
            return  # too slow: closed, the client re-lists
        if live.rv <= last:
            continue  # already sent from the backlog
        last = live.rv
        if request.options.matches(live.object, request.namespace):
            yield live.type, api.served(kind, copy_json(live.object))
