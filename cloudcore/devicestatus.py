"""Where a device's reported side goes: a `DeviceStatus` per Device (KubeEdge v1.23; same name,
owned by the Device, so frequent reports never conflict with edits of the Device), or
`Device.status` (v1.15-v1.22) on clusters that do not serve DeviceStatus. Conditions always go
to `Device.status`. The choice comes from discovery once (or `--device-status`); writes go
through the status subresource where the Device has one, else merge-patch the Device (as
upstream's CRDs, which have none, require). Writes take the lean path (`controllers.leanapi`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from controllers.devices import API_GROUP, API_VERSION
from controllers.leanapi import LeanApi, path_of

log = logging.getLogger("kedge.cloudcore")
DeviceOf = Callable[[str, str], dict[str, Any] | None]  # (namespace, name) -> the Device


@dataclass(frozen=True, slots=True)
class Targets:
    device_status: bool  # twins and state into DeviceStatus objects
    status_subresource: bool  # Device has /status


def discover(api: client.ApiClient, mode: str) -> Targets:
    """What the cluster serves, read from discovery, with `mode` forcing the choice."""
    resources = client.CustomObjectsApi(api).get_api_resources(API_GROUP, API_VERSION)
    names = {r.name for r in resources.resources}
    served = "devicestatuses" in names
    if mode == "devicestatus" and not served:
        log.warning("--device-status devicestatus, but the cluster serves no DeviceStatus")
    chosen = served if mode == "auto" else mode == "devicestatus"
    return Targets(chosen, "devices/status" in names)


class DeviceStatusWrites:
    """Device status and conditions writes, to wherever the cluster keeps them."""

    def __init__(self, api: client.ApiClient, lean: LeanApi, mode: str, device_of: DeviceOf
                 ) -> None:  # fmt: skip
        self.api, self.lean, self.mode, self.device_of = api, lean, mode, device_of
        self._targets: Targets | None = None
        self._discovering = asyncio.Lock()  # writers in flight ask discovery once, not each
        self._exists: set[tuple[str, str]] = set()  # DeviceStatus objects known to exist

    async def targets(self) -> Targets:
        async with self._discovering:
            if self._targets is None:
                self._targets = await asyncio.to_thread(discover, self.api, self.mode)
                log.info("device status target", extra={
                    "deviceStatus": self._targets.device_status,
                    "statusSubresource": self._targets.status_subresource})  # fmt: skip
        return self._targets

    @staticmethod
    def _path(namespace: str, plural: str, *rest: str) -> str:
        return path_of("apis", API_GROUP, API_VERSION, "namespaces", namespace, plural, *rest)

    async def status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        """A node's report: twins, state, lastOnlineTime."""
        if not (await self.targets()).device_status:
            await self._device(namespace, name, status)
            return
        for attempt in (1, 2):
            await self.ensure(namespace, name)
            try:
                path = self._path(namespace, "devicestatuses", name)
                await self.lean.patch(path, {"status": status})
                return
            except ApiException as exc:  # deleted with an earlier Device of this name
                if exc.status != 404 or attempt == 2:
                    raise
                self._exists.discard((namespace, name))

    async def conditions(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        """What stands between the device and working (always on the Device). Every device
        gets its conditions once per cloudcore run: its DeviceStatus is made then too."""
        if (await self.targets()).device_status:
            await self.ensure(namespace, name)
        await self._device(namespace, name, status)

    async def _device(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        rest = ("status",) if (await self.targets()).status_subresource else ()
        await self.lean.patch(self._path(namespace, "devices", name, *rest), {"status": status})

    async def ensure(self, namespace: str, name: str) -> None:
        """The Device's DeviceStatus exists (made with the Device as its controller owner)."""
        key = (namespace, name)
        if key in self._exists:
            return
        device = self.device_of(namespace, name)
        uid = ((device or {}).get("metadata") or {}).get("uid")
        if not uid:
            return  # not a device the cloud knows (yet): its report is written nowhere new
        body = {
            "apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "DeviceStatus",
            "metadata": {"name": name, "namespace": namespace, "ownerReferences": [{
                "apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "Device", "name": name,
                "uid": uid, "controller": True, "blockOwnerDeletion": True}]},
            "spec": {},
        }  # fmt: skip
        try:
            await self.lean.create(self._path(namespace, "devicestatuses"), body)
        except ApiException as exc:
            if exc.status != 409:
                raise
        self._exists.add(key)
