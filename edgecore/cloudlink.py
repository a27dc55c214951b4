"""The edge end of cloud sync: objects from the cloud into MetaManager and the twins, acked;
device twins and states from the edge to the cloud through a durable outbox.

Each object is checked (the node's full set must still parse) and stored before it is acted on
and acked; one that does not parse is answered with an error and not stored. After every
connect the edge asks for a resync, listing the versions it holds, and sends its outbox.
Upstream, every event about a device (documents, state changes) puts the device's current
status snapshot in the outbox; an entry leaves it when the cloud acks it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from devicetwin.model import Device, TwinValue
from devicetwin.rules import sync_reason, unreached
from devicetwin.service import now_ms
from devicetwin.spec import Document, ManifestError, declared_desired, load_documents
from edgecore.edged.manager import check_pod
from edgecore.hub import EdgeHub
from edgecore.metamanager import DEVICE_KINDS, MetaStore
from edgecore.outbox import Outbox
from kedge.channel.message import Message

log = logging.getLogger("kedge.edgecore")
GROUP = "resource"
TWIN_GROUP = "twin"
Adopt = Callable[[list[Device]], Awaitable[None]]
Lookup = Callable[[str], Device | None]


def _value(value: TwinValue | None, kind: str) -> dict[str, Any] | None:
    if value is None:
        return None
    return {"value": value.value, "metadata": {"timestamp": str(value.timestamp), "type": kind}}


def status_of(device: Device) -> dict[str, Any]:
    """Device.status as KubeEdge shows it (twins with reported and observedDesired, state), and
    the desired values written at the edge under `desired` (not part of Device.status)."""
    twins = []
    for name, twin in sorted(device.twins.items()):
        if twin.deleted or twin.actual is None:
            continue
        entry: dict[str, Any] = {"propertyName": name, "reported": _value(twin.actual, twin.type)}
        observed = _value(twin.observed_desired, twin.type)
        if observed is not None:
            entry["observedDesired"] = observed
        twins.append(entry)
    status: dict[str, Any] = {"state": device.state, "twins": twins}
    if device.last_online:
        status["lastOnlineTime"] = device.last_online
    declared = declared_desired(device.spec)
    desired = {  # edge-local desired writes, for the cloud to adopt (the conflict rule)
        name: {
            "value": twin.expected.value,
            "edgeVersion": twin.expected_version.edge,
            "declared": declared.get(name, ""),  # the cloud's value this node last received
            "at": twin.expected.timestamp,
        }
        for name, twin in sorted(device.twins.items())
        if twin.expected is not None and twin.expected_version.edge > 0 and not twin.deleted
    }
    if desired:
        status["desired"] = desired
    return status | edge_notes(device)


def edge_notes(device: Device) -> dict[str, Any]:
    """What the cloud turns into conditions (not part of Device.status): desired values the
    device did not take, cloud desired values the edge kept its own over, and properties the
    mapper cannot serve."""
    notes: dict[str, Any] = {}
    twins = sorted((n, t) for n, t in device.twins.items() if not t.deleted)
    missed = {name: sync_reason(twin) for name, twin in twins if unreached(twin)}
    if missed:
        notes["unreached"] = missed
    overruled = {
        name: {
            "refused": twin.overruled.value,
            "kept": twin.expected.value,
            "keptSince": twin.expected.timestamp,
        }
        for name, twin in twins
        if twin.overruled is not None and twin.expected is not None
    }
    if overruled:
        notes["overruled"] = overruled
    errors = {name: twin.error for name, twin in twins if twin.error}
    if errors:
        notes["errors"] = errors
    return notes


class CloudLink:
    def __init__(
        self,
        node: str,
        meta: MetaStore,
        manifests: list[Document],
        adopt: Adopt,
        outbox: Outbox | None = None,
        lookup: Lookup | None = None,
    ) -> None:
        self.node, self.meta, self.manifests, self.adopt = node, meta, manifests, adopt
        self.outbox, self.lookup = outbox, lookup
        self.hub: EdgeHub | None = None
        self.on_workload: Callable[[str], Awaitable[None]] | None = None  # pods, config changed
        self.source = f"edge/{node}"
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()

    def mark(self, device_id: str) -> None:
        """The twin service's watcher: this device's status changed (it goes up)."""
        self._dirty.add(device_id)
        self._wake.set()

    async def upstream(self) -> None:
        """Put changed devices' status in the outbox and send it: until cancelled."""
        assert self.outbox is not None and self.lookup is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            dirty, self._dirty = self._dirty, set()
            for device_id in sorted(dirty):
                device = self.lookup(device_id)
                if device is not None:
                    status = status_of(device)
                    await self._send_status(device_id, self.outbox.put(device_id, status), status)

    async def _send_status(self, device_id: str, seq: int, status: dict[str, Any]) -> None:
        if self.hub is not None:
            message = Message(
                self.source, TWIN_GROUP, f"device/{device_id}", "update", status,
                resource_version=str(seq),
            )  # fmt: skip
            await self.hub.send(message)

    async def send_outbox(self) -> None:
        if self.outbox is not None:
            for device_id, seq, status in self.outbox.entries():
                await self._send_status(device_id, seq, status)

    def declared(self) -> list[Device]:
        return load_documents([*self.manifests, *self.meta.documents()], self.node, now_ms())

    async def on_connect(self) -> None:
        assert self.hub is not None
        await self.hub.send(
            Message(self.source, GROUP, "", "resync", {"versions": self.meta.versions()})
        )
        await self.send_outbox()

    async def on_message(self, message: Message) -> None:
        assert self.hub is not None
        if message.group == TWIN_GROUP and message.operation == "ack" and self.outbox is not None:
            device_id = message.resource.removeprefix("device/")
            if message.resource_version.isdigit():
                self.outbox.ack(device_id, int(message.resource_version))
            return
        if message.group != GROUP or message.operation not in ("update", "delete"):
            log.info("unhandled %s/%s from the cloud", message.group, message.operation,
                     extra={"node": self.node})  # fmt: skip
            return
        kind = message.resource.split("/", 1)[0]
        devices: list[Device] = []
        try:
            rv = int(message.resource_version)
            body = message.content if message.operation == "update" else None
            if body is not None and not isinstance(body, dict):
                raise ValueError("content must be an object")
            if kind in DEVICE_KINDS:
                # the node's set as it would be, parsed once: refused unless it all still parses
                # (a deletion too: a model some device still uses), adopted as is when stored
                source = f"cloud {message.resource}"
                others = [d for d in self.meta.documents() if d.source != source]
                added = [] if body is None else [Document(source, 1, body)]
                devices = load_documents([*self.manifests, *others, *added], self.node, now_ms())
            elif kind == "pod" and body is not None:
                check_pod(body, self.node)
            changed = self.meta.apply(message.resource, rv, body)
        except (ValueError, ManifestError) as exc:
            log.warning("refused %s: %s", message.resource, exc, extra={"node": self.node})
            await self.hub.send(message.reply(self.source, "response", {"error": str(exc)}))
            return
        if changed and kind in DEVICE_KINDS:
            await self.adopt(devices)
        elif changed and self.on_workload is not None:
            await self.on_workload(kind)
        ack = Message(
            self.source, GROUP, message.resource, "ack", None,
            parent_id=message.msg_id, resource_version=message.resource_version,
        )  # fmt: skip
        await self.hub.send(ack)
