"""List + watch of one resource through the official client, delivered on an asyncio loop.

The client is synchronous, so each informer runs in its own thread: list, then watch from the
list's resourceVersion; on 410 Gone (the version left the server's history) list again and
report what changed meanwhile; on other errors retry with capped backoff. Events reach the
loop as (type, object) with type ADDED, MODIFIED or DELETED, plus SYNCED after each (re)list
(its object carries only the list's resourceVersion).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
from collections.abc import Callable
from typing import Any

from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from kedge.backoff import Backoff

log = logging.getLogger("kedge.controllers")
Obj = dict[str, Any]
Handler = Callable[[str, Obj], None]
# a watch request lasts this long (Kubernetes clients use 5-10 minutes): a settled cluster
# costs no requests in between; stop() cuts the current one short instead of waiting for it
WATCH_SECONDS = 300
STOP_SECONDS = 10.0
MAX_BACKOFF = 10.0


def _key(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


class Informer:
    def __init__(
        self,
        name: str,
        list_call: Callable[..., Any],
        loop: asyncio.AbstractEventLoop,
        handler: Handler,
    ) -> None:
        """`list_call(**kwargs)` lists the resource as dicts (a CustomObjectsApi method with its
        group/version/plural bound, for example)."""
        self.name, self._list, self._loop, self._handler = name, list_call, loop, handler
        self._stop = threading.Event()
        self._known: dict[tuple[str, str], Obj] = {}
        self._response: Any = None  # the current watch request's response (urllib3)
        self._thread = threading.Thread(target=self._run, name=f"informer {name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def signal(self) -> None:
        """Ask the thread to end: its current watch request is cut short."""
        self._stop.set()
        self._cut(self._response)

    def stop(self) -> None:
        self.signal()
        self._thread.join(STOP_SECONDS)

    @staticmethod
    def _cut(response: Any) -> None:
        """Shut the watch's socket for reading: the thread blocked in it sees the end."""
        if response is not None:
            with contextlib.suppress(Exception):  # already closed, or never connected
                response.shutdown()

    def _watch(self, **kwargs: Any) -> Any:
        """The list call for a watch, keeping its response so that `signal()` can cut it."""
        response = self._response = self._list(**kwargs)
        if self._stop.is_set():  # signalled while this request was being made
            self._cut(response)
        return response

    def _emit(self, kind: str, obj: Obj) -> None:
        self._loop.call_soon_threadsafe(self._handler, kind, obj)

    def _relist(self) -> str:
        listed = self._list()
        seen: dict[tuple[str, str], Obj] = {}
        for item in listed.get("items", []):
            key = _key(item)
            seen[key] = item
            old = self._known.get(key)
            if old is None:
                self._emit("ADDED", item)
            elif old["metadata"].get("resourceVersion") != item["metadata"].get("resourceVersion"):
                self._emit("MODIFIED", item)
        for key, old in self._known.items():
            if key not in seen:
                self._emit("DELETED", old)
        self._known = seen
        rv = str(listed.get("metadata", {}).get("resourceVersion", ""))
        self._emit("SYNCED", {"metadata": {"resourceVersion": rv}})
        return rv

    def _run(self) -> None:
        backoff, rv = Backoff(0.5, MAX_BACKOFF), ""
        while not self._stop.is_set():
            try:
                if not rv:
                    rv = self._relist()
                stream = watch.Watch().stream(
                    self._watch, resource_version=rv, timeout_seconds=WATCH_SECONDS
                )
                for event in stream:
                    obj = event["object"]
                    rv = str(obj.get("metadata", {}).get("resourceVersion", rv))
                    if event["type"] == "DELETED":
                        self._known.pop(_key(obj), None)
                    elif event["type"] in ("ADDED", "MODIFIED"):
                        self._known[_key(obj)] = obj
                    else:
                        continue  # bookmarks
                    self._emit(event["type"], obj)
                    if self._stop.is_set():
                        break
                backoff.reset()
            except ApiException as exc:
                if exc.status == 410:
                    log.info("%s: resourceVersion %s expired; listing again", self.name, rv)
                    rv = ""
                    continue
                delay = backoff.next()
                log.warning("%s: %s; retrying in %.1fs", self.name, exc.reason, delay)
                self._stop.wait(delay)
            except Exception as exc:  # noqa: BLE001 - the API may be away; keep trying
                if self._stop.is_set():
                    break  # the watch cut short by signal()
                delay = backoff.next()
                log.warning("%s: %r; retrying in %.1fs", self.name, exc, delay)
                rv = ""
                self._stop.wait(delay)


class Informers:
    """Several informers feeding one handler as `handler(resource, kind, obj)`."""

    def __init__(self) -> None:
        self.running: list[Informer] = []

    def start(
        self,
        listers: dict[str, Callable[..., Any]],
        loop: asyncio.AbstractEventLoop,
        handler: Callable[[str, str, Obj], None],
    ) -> None:
        for name, lister in listers.items():
            informer = Informer(name, lister, loop, functools.partial(handler, name))
            self.running.append(informer)
            informer.start()

    def stop(self) -> None:
        stop_all(self.running)


def stop_all(informers: list[Informer]) -> None:
    """Signal every informer first, then wait: one watch timeout in all, not one each."""
    for informer in informers:
        informer.signal()
    for informer in informers:
        informer.stop()
