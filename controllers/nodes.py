"""Heartbeats of the edge nodes connected to this cloudcore replica (EdgeController's node
part), with the kubelet's economics since NodeLease.

An edge node's heartbeats (every 10 s over the channel) register its Node (labels, the
replica's stream endpoint and the node's mappers as annotations), renew its Lease in
`kube-node-lease` (every `renew` seconds: cheap, through the lean path) and write its status
(capacity, allocatable, addresses, nodeInfo, `Ready=True`) only when something in it changed,
when the Node is not shown Ready (the monitor marked it Unknown), or every `report` seconds
(kubelet's nodeStatusReportFrequency, 5 minutes). Heartbeats coalesce per node. Marking silent
nodes is the node monitor's (`controllers.nodemonitor`), from the Leases, on one replica.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException

from controllers.leanapi import LeanApi, path_of
from controllers.nodeview import EDGE_ROLE, NodeView, mapper_annotations, ready_of
from kedge import clock

log = logging.getLogger("kedge.controllers")
LEASE_NAMESPACE = "kube-node-lease"
STREAM_ANNOTATION = "cloudstream.kedge.io/endpoint"  # where the API server fetches pod logs
IN_FLIGHT = 16  # heartbeat writes at once (the lean path's connection pool)


@dataclass(frozen=True)
class NodeTiming:
    """Kubelet's defaults: a 40 s lease renewed every 10 s, status every 5 minutes."""

    lease: float = 40.0  # seconds a Lease lasts (leaseDurationSeconds)
    renew: float = 10.0  # seconds between renewals
    report: float = 300.0  # seconds between writes of an unchanged Node status


@dataclass
class NodeState:
    written: float = -1e9  # monotonic time the Node status was last written
    renewed: float = -1e9  # monotonic time the Lease was last renewed
    status: dict[str, Any] = field(default_factory=dict)  # what the node last reported
    shown: dict[str, Any] = field(default_factory=dict)  # the status parts last written
    meta: dict[str, Any] = field(default_factory=dict)  # labels and annotations to hold
    acted: tuple[str, float] = ("", -1e9)  # (the stored Node's version when we wrote, when)


def mappers_of(report: dict[str, Any]) -> frozenset[str]:
    mappers = report.get("mappers", [])
    if not isinstance(mappers, list) or not all(isinstance(m, str) for m in mappers):
        raise ValueError("mappers must be a list of protocol names")
    return frozenset(mappers)


def lost_mappers_of(report: dict[str, Any]) -> frozenset[tuple[str, str]]:
    lost = report.get("mappersLost") or {}
    if not isinstance(lost, dict) or not all(isinstance(v, str) for v in lost.values()):
        raise ValueError("mappersLost must map protocol names to times")
    return frozenset((str(k), v[:64]) for k, v in lost.items())


def clean_report(report: Any) -> tuple[dict[str, str], dict[str, Any]]:
    """(labels, status parts) from a node's heartbeat, keeping only well-formed fields."""
    if not isinstance(report, dict):
        raise ValueError("a node heartbeat must be an object")
    mappers_of(report)
    lost_mappers_of(report)
    labels = report.get("labels") or {}
    if not isinstance(labels, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise ValueError("labels must map strings to strings")
    status: dict[str, Any] = {}
    for key in ("capacity", "allocatable", "nodeInfo"):
        value = report.get(key)
        if value is not None:
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise ValueError(f"{key} must map names to strings")
            status[key] = value
    addresses = report.get("addresses", [])
    if not isinstance(addresses, list) or not all(
        isinstance(a, dict) and isinstance(a.get("type"), str) and isinstance(a.get("address"), str)
        for a in addresses
    ):
        raise ValueError("addresses must be a list of {type, address}")
    status["addresses"] = [{"type": a["type"], "address": a["address"]} for a in addresses]
    return {**labels, EDGE_ROLE: ""}, status


class NodeLifecycle:
    def __init__(self, lean: LeanApi, view: NodeView, timing: NodeTiming | None = None,
                 annotations: dict[str, str] | None = None) -> None:  # fmt: skip
        """`annotations` go on every Node registered (this replica's stream endpoint)."""
        self.lean, self.view = lean, view
        self.timing, self.annotations = timing or NodeTiming(), dict(annotations or {})
        self.nodes: dict[str, NodeState] = {}
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()

    def heartbeat(self, node: str, report: Any, address: str | None) -> None:
        """A heartbeat from a connected node (raises ValueError for a malformed one)."""
        labels, status = clean_report(report)
        if address and not any(a["type"] == "InternalIP" for a in status["addresses"]):
            status["addresses"].insert(0, {"type": "InternalIP", "address": address})
        state = self.nodes.setdefault(node, NodeState())
        annotations = mapper_annotations(mappers_of(report), lost_mappers_of(report))
        state.meta = {"labels": labels, "annotations": {**self.annotations, **annotations}}
        state.status = status
        self._dirty.add(node)
        self._wake.set()

    def gone(self, node: str) -> None:
        """The node's session here ended: its state goes (it may reconnect elsewhere)."""
        self.nodes.pop(node, None)
        self._dirty.discard(node)

    async def run(self) -> None:
        await self.view.synced.wait()  # what is stored decides what to write
        while True:
            await self._wake.wait()
            self._wake.clear()
            dirty, self._dirty = sorted(self._dirty), set()
            due = [n for n in dirty if n in self.nodes and self._lease_due(self.nodes[n])]
            await self._each(due, self._renew_lease)  # Leases first: they keep nodes Ready
            await self._each(dirty, self._renew)

    def _lease_due(self, state: NodeState) -> bool:
        return time.monotonic() - state.renewed >= self.timing.renew

    async def _each(self, nodes: list[str], work: Callable[[str, NodeState], Awaitable[None]]
                    ) -> None:  # fmt: skip
        """`work` for each node still here, a few at a time (writes overlap)."""
        for start in range(0, len(nodes), IN_FLIGHT):
            await asyncio.gather(*(self._one(n, work) for n in nodes[start : start + IN_FLIGHT]))

    async def _one(self, node: str, work: Callable[[str, NodeState], Awaitable[None]]) -> None:
        state = self.nodes.get(node)
        if state is None:
            return
        try:
            await work(node, state)
        except ApiException as exc:  # tried again with its next heartbeat
            log.warning("node heartbeat not stored: %s", exc.reason, extra={"node": node})

    async def _renew_lease(self, node: str, state: NodeState) -> None:
        await self._lease(node, state)
        state.renewed = time.monotonic()

    async def _renew(self, node: str, state: NodeState) -> None:
        """The Node's metadata and status, where they need writing (the Lease went first)."""
        stored = self.view.nodes.get(node)
        now = time.monotonic()
        version = str(((stored or {}).get("metadata") or {}).get("resourceVersion", ""))
        if state.acted[0] == version and now - state.acted[1] < self.timing.report:
            return  # our last write is not in the view yet: judging by it would write again
        if stored is None or not _holds(stored.get("metadata") or {}, state.meta):
            await self._register(node, state, exists=stored is not None)
            state.acted = (version, now)
        shown = (ready_of(stored) or {}).get("status") if stored is not None else None
        if state.written < 0 and shown == "True" and _shows(stored, state.status):
            state.shown, state.written = state.status, now  # as stored before a restart
        if (shown != "True" or state.status != state.shown
                or now - state.written >= self.timing.report):  # fmt: skip
            await self._set_ready(node, state, stored)
            state.acted = (version, now)

    async def _register(self, node: str, state: NodeState, exists: bool) -> None:
        if not exists:
            body = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node, **state.meta}}
            try:
                await self.lean.create(path_of("api", "v1", "nodes"), body)
                log.info("node registered", extra={"node": node})
                return
            except ApiException as exc:
                if exc.status != 409:
                    raise
        await self.lean.patch(path_of("api", "v1", "nodes", node), {"metadata": state.meta})

    async def _lease(self, node: str, state: NodeState) -> None:
        spec = {"holderIdentity": node, "leaseDurationSeconds": int(self.timing.lease),
                "renewTime": clock.micro_now()}  # fmt: skip
        path = path_of("apis", "coordination.k8s.io", "v1", "namespaces", LEASE_NAMESPACE,
                       "leases", node)  # fmt: skip
        try:
            await self.lean.patch(path, {"spec": spec})
        except ApiException as exc:
            if exc.status != 404:
                raise
            lease = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": node, "namespace": LEASE_NAMESPACE},
                "spec": spec,
            }
            await self.lean.create(path.rsplit("/", 1)[0], lease)

    async def _set_ready(self, node: str, state: NodeState, stored: dict[str, Any] | None) -> None:
        now = clock.now()
        before = ready_of(stored) if stored is not None else None
        transition = (str(before.get("lastTransitionTime"))
                      if before and before.get("status") == "True" and
                      before.get("lastTransitionTime") else now)  # fmt: skip
        condition = {
            "type": "Ready", "status": "True", "lastTransitionTime": transition,
            "lastHeartbeatTime": now, "reason": "EdgeReady",
            "message": "edgecore is posting ready status",
        }  # fmt: skip
        body = {"status": {**state.status, "conditions": [condition]}}
        await self.lean.patch(path_of("api", "v1", "nodes", node, "status"), body)
        state.shown, state.written = state.status, time.monotonic()


def _shows(stored: dict[str, Any] | None, status: dict[str, Any]) -> bool:
    shown = (stored or {}).get("status") or {}
    return all(shown.get(key) == value for key, value in status.items())


def _holds(meta: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """The stored Node already carries the wanted labels and annotations."""
    return all(
        all((meta.get(part) or {}).get(k) == v for k, v in (wanted.get(part) or {}).items())
        for part in ("labels", "annotations")
    )
