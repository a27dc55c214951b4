"""DeviceController: Devices and DeviceModels from the API, delivered to the nodes they name.

Two informers (all namespaces) feed `DeviceRouting`; each change becomes wanted objects for a
node (`devicemodel/<ns>/<name>` then `device/<ns>/<name>`, or a device's deletion), handed in
order to `deliver`, which records and sends them reliably (cloudcore's Downstream).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from kubernetes import client

from controllers.desired import with_seen_versions
from controllers.devices import API_GROUP, API_VERSION, DeviceRouting, NodeChange, Problem
from controllers.informer import Informer, stop_all

log = logging.getLogger("kedge.controllers")
GROUP, VERSION = "devices.kubeedge.io", "v1beta1"
Obj = dict[str, Any]
Deliver = Callable[[str, str, int, Obj | None], Awaitable[None]]
Route = Callable[[str, Obj], tuple[list[NodeChange], list[Problem]]]


def _rv(obj: Obj) -> int:
    return int((obj.get("metadata") or {}).get("resourceVersion") or 0)


class DeviceController:
    def __init__(self, api: client.ApiClient, deliver: Deliver) -> None:
        self.api, self.deliver = api, deliver
        self.routing = DeviceRouting()
        self._queue: asyncio.Queue[tuple[NodeChange | str, int]] = asyncio.Queue()
        self._synced: dict[str, int] = {}
        # after both lists: what every node must hold (node -> keys) and the lists' version (newer
        # than what any node holds), so whoever delivers can take back what nodes hold beyond it
        self.on_synced: Callable[[dict[str, set[str]], int], Awaitable[None]] | None = None
        self._informers: list[Informer] = []

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        custom = client.CustomObjectsApi(self.api)
        for plural, handler in (("devicemodels", self._on_model), ("devices", self._on_device)):
            lister = functools.partial(
                custom.list_cluster_custom_object, API_GROUP, API_VERSION, plural
            )
            informer = Informer(plural, lister, loop, handler)
            self._informers.append(informer)
            informer.start()

    def stop(self) -> None:
        stop_all(self._informers)

    def _synced_event(self, name: str, obj: Obj) -> None:
        self._synced[name] = _rv(obj)
        if set(self._synced) == {"devices", "devicemodels"}:
            self._queue.put_nowait(("synced", max(self._synced.values())))

    def expected(self) -> dict[str, set[str]]:
        """node -> the keys it must hold now."""
        out: dict[str, set[str]] = {}
        for key, node in self.routing.placed.items():
            device = self.routing.devices[key]
            model = str(((device.get("spec") or {}).get("deviceModelRef") or {}).get("name", ""))
            out.setdefault(node, set()).update(
                {f"device/{key[0]}/{key[1]}", f"devicemodel/{key[0]}/{model}"}
            )
        return out

    def _on_device(self, kind: str, obj: Obj) -> None:
        self._on_event("devices", self.routing.device_event, kind, obj)

    def _on_model(self, kind: str, obj: Obj) -> None:
        self._on_event("devicemodels", self.routing.model_event, kind, obj)

    def _on_event(self, name: str, route: Route, kind: str, obj: Obj) -> None:
        if kind == "SYNCED":
            self._synced_event(name, obj)
            return
        changes, problems = route(kind, obj)
        for problem in problems:
            log.warning("%s/%s: %s", *problem.key, problem.message)
        for change in changes:  # resourceVersions are cluster-wide: the event's orders removals
            self._queue.put_nowait((change, _rv(obj)))

    async def run(self) -> None:
        """Deliver changes in the order they happened."""
        while True:
            change, event_rv = await self._queue.get()
            if isinstance(change, str):  # both informers (re)listed
                if self.on_synced is not None:
                    await self.on_synced(self.expected(), event_rv)
                continue
            namespace, name = change.key
            if change.action == "remove":
                await self.deliver(change.node, f"device/{namespace}/{name}", event_rv, None)
                continue
            assert change.device is not None and change.model is not None
            model_name = str(change.model["metadata"]["name"])
            await self.deliver(
                change.node,
                f"devicemodel/{namespace}/{model_name}",
                _rv(change.model),
                change.model,
            )
            await self.deliver(
                change.node,
                f"device/{namespace}/{name}",
                _rv(change.device),
                with_seen_versions(change.device),
            )
