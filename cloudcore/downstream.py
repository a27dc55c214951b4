"""Delivery of objects to the edge nodes connected to this replica, with no state of its own.

What a node must hold comes from the API server (the controllers' informers, the same on every
replica); what it holds comes from the node itself: on every connect it lists the version of
each object it stores, and acks each version it stores after that. A replica sends a node
exactly what it lacks or holds older, so a node that moves to another replica (its replica
stopped, or was killed) resumes there without anything resent twice, and nothing on disk has to
be shared between replicas. (KubeEdge records acked versions in `ObjectSync` objects for the
same purpose; here the node's own list is that record.) An edge ignores any version not newer
than what it stores, so a repeated send never reaches a mapper twice.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from cloudcore.hub import CloudHub
from kedge.channel.message import Message
from kedge.channel.routes import object_change

log = logging.getLogger("kedge.cloudcore")


@dataclass(frozen=True, slots=True)
class Pending:
    node: str
    key: str
    rv: int
    deleted: bool
    payload: Any


def _lacks(have: int | None, item: Pending) -> bool:
    """The node holding version `have` (None: nothing) needs `item`."""
    if item.deleted:
        return have is not None and have < item.rv
    return have is None or have < item.rv


class Downstream:
    def __init__(self, hub: CloudHub) -> None:
        self.hub = hub
        self.wanted: dict[str, dict[str, Pending]] = {}  # node -> key -> newest (deletions too)
        self.held: dict[str, dict[str, int]] = {}  # connected node -> key -> version it holds
        self.synced = False  # set once the controllers listed everything: only then is an
        # object a node holds but the cloud does not know truly gone

    async def want(self, node: str, key: str, rv: int, body: dict[str, Any] | None) -> None:
        objects = self.wanted.setdefault(node, {})
        current = objects.get(key)
        if current is not None and current.rv >= rv:
            return  # newest wins: an older version is never sent
        item = objects[key] = Pending(node, key, rv, body is None, body)
        held = self.held.get(node)
        if held is not None and node in self.hub.sessions and _lacks(held.get(key), item):
            await self._send(item)

    async def _send(self, item: Pending) -> None:
        message = object_change(item.key, item.rv, None if item.deleted else item.payload)
        if not await self.hub.send(item.node, message):
            log.debug("node gone; %s waits for its resync", item.key, extra={"node": item.node})

    def gone(self, node: str) -> None:
        """The node's session here ended: what it holds is for its next replica to learn."""
        self.held.pop(node, None)

    async def on_ack(self, message: Message, node: str) -> None:
        """The node stored a version of an object."""
        try:
            rv = int(message.resource_version)
        except ValueError:
            log.warning("ack without a version for %s", message.resource, extra={"node": node})
            return
        held = self.held.get(node)
        if held is not None:
            held[message.resource] = max(rv, held.get(message.resource, 0))

    async def on_resync(self, message: Message, node: str) -> None:
        """The node (re)connected and lists what it holds."""
        content = message.content if isinstance(message.content, dict) else {}
        versions = content.get("versions")
        versions = versions if isinstance(versions, dict) else {}
        await self.resync(node, {str(k): v for k, v in versions.items() if isinstance(v, int)})

    async def resync(self, node: str, held: dict[str, int]) -> None:
        """Send the node what it lacks or holds older, and (once listed) take back what the
        cloud no longer has for it."""
        self.held[node] = dict(held)
        wanted = self.wanted.get(node, {})
        for item in sorted(wanted.values(), key=lambda p: p.rv):
            if _lacks(held.get(item.key), item):
                await self._send(item)
        if self.synced:
            await self._take_back(node, {k for k, p in wanted.items() if not p.deleted})

    async def _take_back(self, node: str, keep: set[str], rv: int = 0) -> None:
        """Deletions of what the node holds beyond `keep`, at `rv` or one above the node's
        version (an edge applies only newer versions)."""
        wanted = self.wanted.get(node, {})
        for key, have in sorted(self.held.get(node, {}).items()):
            item = wanted.get(key)
            if key not in keep and (item is None or not item.deleted):
                await self.want(node, key, max(rv, have + 1), None)

    async def reconcile(self, expected: dict[str, set[str]], rv: int) -> None:
        """After a full list: take back what was deleted or moved while this replica was not
        watching, from every node that listed its holdings here, devices before their models."""
        for node, objects in self.wanted.items():
            for key in sorted(k for k, p in objects.items()
                              if not p.deleted and k not in expected.get(node, set())):  # fmt: skip
                await self.want(node, key, rv, None)
        for node in list(self.held):
            await self._take_back(node, expected.get(node, set()), rv)
        self.synced = True
        log.info("everything listed", extra={"nodes": len(expected),
                 "objects": sum(len(keys) for keys in expected.values())})  # fmt: skip


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
