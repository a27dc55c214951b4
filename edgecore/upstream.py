"""What the edge sends up: device status through a durable outbox, and pod status.

The twin service names the devices whose status changed once each commit is durable
(`changed`); their current status goes into the outbox (one entry per device, the newest
replacing an older one) and is sent; an entry leaves the outbox when the cloud acks it. After
every connect the whole outbox is sent again. Pod status is sent as it comes (edged keeps the
newest and sends it again after a reconnect).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from devicetwin.model import Device
from devicetwin.status import status_of
from edgecore.hub import EdgeHub
from edgecore.outbox import Outbox
from kedge.channel import routes
from kedge.channel.message import Message

log = logging.getLogger("kedge.edgecore")


class EdgeUpstream:
    def __init__(self, node: str, hub: EdgeHub, outbox: Outbox) -> None:
        self.node, self.hub, self.outbox = node, hub, outbox
        self._dirty: dict[str, Device] = {}
        self._wake = asyncio.Event()

    def changed(self, devices: list[Device]) -> None:
        """The twin service's `on_status`: these devices' status is stored and goes up."""
        for device in devices:
            self._dirty[device.id] = device
        self._wake.set()

    async def run(self) -> None:
        """Until cancelled: changed devices' status into the outbox, and sent."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            dirty, self._dirty = self._dirty, {}
            for device_id, device in sorted(dirty.items()):
                status = status_of(device)
                await self._send(device_id, self.outbox.put(device_id, status), status)

    async def _send(self, device_id: str, seq: int, status: dict[str, Any]) -> None:
        await self.hub.send(routes.twin_report(self.node, device_id, seq, status))

    async def send_outbox(self) -> None:
        """After a connect: everything the cloud has not acked."""
        for device_id, seq, status in self.outbox.entries():
            await self._send(device_id, seq, status)

    async def on_ack(self, message: Message) -> None:
        """`twin/ack`: the cloud stored a status report."""
        try:
            _, namespace, name = routes.parse_key(message.resource, ("device",))
        except ValueError as exc:
            log.info("malformed status ack: %s", exc, extra={"node": self.node})
            return
        if message.resource_version.isdigit():
            self.outbox.ack(f"{namespace}/{name}", int(message.resource_version))
        else:
            log.info("status ack without a sequence number", extra={"node": self.node})

    async def pod_status(self, key: str, snapshot: dict[str, Any]) -> None:
        """edged's report of one pod (`<namespace>/<name>`)."""
        await self.hub.send(routes.pod_status(self.node, key, snapshot))
