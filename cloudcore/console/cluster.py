"""The console's reads and writes of the cluster, through the API server with the console's own
kubeconfig (the lean client: one pooled connection, on the console's event loop)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlencode

import orjson
from kubernetes.client.exceptions import ApiException

from cloudcore.console.views import JSON, device_detail, device_view, event_view, node_view
from controllers.leanapi import JSON_PATCH, LeanApi, path_of

log = logging.getLogger("kedge.console")
GROUP = "/apis/devices.kubeedge.io/v1beta1"
GROUP_PATH = GROUP[1:]  # for path_of
EVENTS_SHOWN = 50
RETRY = 1.0  # seconds before a watch that failed is opened again
Models = dict[Any, dict[str, Any] | None]  # DeviceModels read, by name


class Cluster:
    def __init__(self, api: LeanApi) -> None:
        self.api = api
        self._statuses: bool | None = None  # whether DeviceStatus is served (asked once)

    async def _device_statuses(self) -> bool:
        if self._statuses is None:
            found = await self.api.get(GROUP)
            self._statuses = any(r.get("name") == "devicestatuses" for r in found["resources"])
        return self._statuses

    async def _optional(self, path: str) -> dict[str, Any] | None:
        try:
            return dict(await self.api.get(path))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def nodes(self) -> list[JSON]:
        found, pods = await asyncio.gather(self.api.get("/api/v1/nodes"),
                                           self.api.get("/api/v1/pods"))  # fmt: skip
        return [node_view(n, pods["items"]) for n in found["items"]]

    async def devices(self) -> list[JSON]:
        found = await self.api.get(f"{GROUP}/devices")
        statuses: dict[tuple[str, str], Any] = {}
        if await self._device_statuses():
            for s in (await self.api.get(f"{GROUP}/devicestatuses"))["items"]:
                statuses[(s["metadata"].get("namespace"), s["metadata"]["name"])] = s
        return [device_view(d, statuses.get((d["metadata"].get("namespace"),
                                              d["metadata"]["name"])))
                for d in found["items"]]  # fmt: skip

    async def get_device(self, namespace: str, name: str) -> dict[str, Any]:
        return dict(
            await self.api.get(path_of(GROUP_PATH, "namespaces", namespace, "devices", name))
        )

    async def _model(self, device: Mapping[str, Any]) -> dict[str, Any] | None:
        model = ((device.get("spec") or {}).get("deviceModelRef") or {}).get("name")
        namespace = device["metadata"].get("namespace", "default")
        if not model:
            return None
        return await self._optional(path_of(GROUP_PATH, "namespaces", namespace, "devicemodels",
                                            model))  # fmt: skip

    async def detail(self, namespace: str, name: str, models: Models | None = None) -> JSON:
        """The device page's data; `models` keeps DeviceModels read before (a live stream's, so
        a change of reported values does not re-read the model)."""
        device = await self.get_device(namespace, name)
        status = None
        if await self._device_statuses():
            status = await self._optional(
                path_of(GROUP_PATH, "namespaces", namespace, "devicestatuses", name)
            )
        models = {} if models is None else models
        ref = ((device.get("spec") or {}).get("deviceModelRef") or {}).get("name")
        if ref not in models:
            models[ref] = await self._model(device)
        return device_detail(device, status, models[ref])

    async def writable(self, device: Mapping[str, Any], prop: str) -> bool | None:
        """Whether the device's model makes `prop` ReadWrite; None if it has no such property."""
        model = await self._model(device) or {}
        about = next((p for p in (model.get("spec") or {}).get("properties") or []
                      if p.get("name") == prop), None)  # fmt: skip
        return None if about is None else about.get("accessMode") == "ReadWrite"

    async def patch_device(self, namespace: str, name: str, patch: list[JSON]) -> None:
        await self.api.patch(path_of(GROUP_PATH, "namespaces", namespace, "devices", name), patch,
                             JSON_PATCH)  # fmt: skip

    async def events(self, namespace: str, name: str) -> list[JSON]:
        query = urlencode({"fieldSelector": f"involvedObject.name={name}"})
        found = await self.api.get(
            f"{path_of('api/v1', 'namespaces', namespace, 'events')}?{query}"
        )
        shown = sorted(map(event_view, found["items"]), key=lambda e: str(e["time"]))
        return shown[-EVENTS_SHOWN:]

    async def history(self, namespace: str, name: str, query: Mapping[str, str]) -> Any:
        path = path_of(GROUP_PATH, "namespaces", namespace, "devices", name, "history")
        return orjson.loads(await self.api.request("GET", f"{path}?{urlencode(query)}", None))

    async def follow(self, namespace: str, name: str) -> AsyncIterator[JSON]:
        """The device page's data now, then again whenever its Device or DeviceStatus changes
        (both watched; nothing is polled)."""
        changed: asyncio.Queue[None] = asyncio.Queue()
        kinds = ["devices"] + (["devicestatuses"] if await self._device_statuses() else [])
        watches = [asyncio.create_task(self._watch(changed, namespace, kind, name))
                   for kind in kinds]  # fmt: skip
        shown: JSON | None = None
        models: Models = {}  # a model edit shows on the page's next load
        try:
            changed.put_nowait(None)
            while True:
                await changed.get()
                while not changed.empty():  # a burst of changes: one read
                    changed.get_nowait()
                detail = await self.detail(namespace, name, models)
                if detail != shown:
                    shown = detail
                    yield detail
        finally:
            for task in watches:
                task.cancel()
            for task in watches:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _watch(self, changed: asyncio.Queue[None], namespace: str, kind: str,
                     name: str) -> None:  # fmt: skip
        """Tell `changed` of every event on one object; reopened when the server ends it."""
        version = ""
        while True:
            query = {"watch": "1", "fieldSelector": f"metadata.name={name}"}
            if version:
                query["resourceVersion"] = version
            path = f"{path_of(GROUP_PATH, 'namespaces', namespace, kind)}?{urlencode(query)}"
            try:
                async for line in self.api.lines(path):
                    event = orjson.loads(line)
                    if event.get("type") == "ERROR":  # 410 Gone: start again from now
                        version = ""
                        break
                    version = event["object"]["metadata"].get("resourceVersion", version)
                    changed.put_nowait(None)
            except (ApiException, orjson.JSONDecodeError, KeyError, TypeError) as exc:
                log.warning("watch of %s failed: %s", kind, exc,
                            extra={"device": f"{namespace}/{name}"})  # fmt: skip
                version = ""
                await asyncio.sleep(RETRY)
