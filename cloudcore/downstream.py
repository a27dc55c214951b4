"""Reliable delivery of objects to edge nodes over CloudHub, on top of ObjectSync.

Every wanted object is recorded durably before it is sent; a node acks each version it stored;
whatever is unacked is sent again when the node asks for a resync (it does on every connect,
listing the versions it holds), so nothing is lost across disconnects or cloudcore restarts.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from cloudcore.hub import CloudHub
from cloudcore.objectsync import ObjectSync, Pending
from kedge.channel.message import Message
from kedge.channel.routes import object_change

log = logging.getLogger("kedge.cloudcore")


class Downstream:
    def __init__(self, hub: CloudHub, sync: ObjectSync) -> None:
        self.hub, self.sync = hub, sync
        self.synced = False  # set once the controllers listed everything: only then is an
        # object a node holds but the cloud does not know truly gone

    async def want(self, node: str, key: str, rv: int, body: dict[str, Any] | None) -> None:
        if self.sync.want(node, key, rv, body, deleted=body is None):
            await self._send(Pending(node, key, rv, body is None, body))

    async def _send(self, item: Pending) -> None:
        message = object_change(item.key, item.rv, None if item.deleted else item.payload)
        if not await self.hub.send(item.node, message):
            log.debug("node offline; %s kept for its resync", item.key, extra={"node": item.node})

    async def on_ack(self, message: Message, node: str) -> None:
        """The node stored a version of an object."""
        try:
            self.sync.ack(node, message.resource, int(message.resource_version))
        except ValueError:
            log.warning("ack without a version for %s", message.resource, extra={"node": node})

    async def on_resync(self, message: Message, node: str) -> None:
        """The node (re)connected and lists what it holds."""
        content = message.content if isinstance(message.content, dict) else {}
        held = content.get("versions")
        await self.resync(node, held if isinstance(held, dict) else {})

    async def resync(self, node: str, held: dict[str, Any]) -> None:
        """Send the node everything unacked, and anything it reports holding older or lacking."""
        sent = set()
        for item in self.sync.pending(node):
            sent.add(item.key)
            await self._send(item)
        for key in self.sync.held(node):
            wanted = self.sync.wanted(node, key)
            have = held.get(key)
            if (
                wanted is not None
                and key not in sent
                and (not isinstance(have, int) or have < wanted.rv)
            ):
                await self._send(wanted)
        if not self.synced:
            return
        for key, have in held.items():  # objects the cloud no longer knows for this node
            if self.sync.wanted(node, key) is None and isinstance(have, int):
                await self._send(Pending(node, key, have + 1, True, None))

    async def reconcile(self, expected: dict[str, set[str]], rv: int) -> None:
        """After a full list: take back from every node what it should no longer hold (things
        deleted or moved while cloudcore was down), devices before their models."""
        for node in self.sync.nodes():
            wanted = expected.get(node, set())
            held = set(self.sync.held(node)) | {
                p.key for p in self.sync.pending(node) if not p.deleted
            }
            for key in sorted(held - wanted):
                await self.want(node, key, rv, None)
        self.synced = True


class Listings:
    """Once both the device and the pod controller have listed everything, what nodes hold
    beyond that is taken back, and `then()` runs (status reports held until owners are known)."""

    SOURCES = frozenset({"devices", "pods"})

    def __init__(
        self,
        downstream: Downstream,
        expected: Callable[[], dict[str, set[str]]],
        then: Callable[[], Awaitable[None]],
    ) -> None:
        self.downstream, self.expected, self.then = downstream, expected, then
        self._listed: dict[str, int] = {}

    async def listed(self, source: str, rv: int) -> None:
        self._listed[source] = rv
        if set(self._listed) == self.SOURCES:
            await self.downstream.reconcile(self.expected(), max(self._listed.values()))
            await self.then()
