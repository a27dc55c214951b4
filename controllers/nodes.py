"""Node lifecycle for edge nodes (EdgeController's node part, and the node lifecycle controller).

An edge node's heartbeats (every 10 s over the channel) register its Node (labels, capacity,
allocatable, addresses, nodeInfo), keep `Ready` true and renew its Lease in `kube-node-lease`.
Heartbeats coalesce per node; the Node's status is written only when it changed or its heartbeat
time is a minute old (as kubelet's nodeStatusReportFrequency), the Lease at most every quarter
of the grace period (kubelet renews its 40 s lease every 10 s).
A node silent for longer than the grace period becomes `Ready=Unknown`; the next heartbeat makes
it `True` again.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from controllers.apicall import write

log = logging.getLogger("kedge.controllers")
LEASE_NAMESPACE = "kube-node-lease"
EDGE_ROLE = "node-role.kubernetes.io/edge"
STREAM_ANNOTATION = "cloudstream.kedge.io/endpoint"  # where the API server fetches pod logs
REPORT_EVERY = 60.0  # seconds: rewrite an unchanged Node status this often (heartbeat time)
TICK = 1.0  # seconds between passes over pending heartbeats and grace checks


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stamp(when: datetime.datetime | None) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ") if when is not None else ""


def _micro_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class NodeState:
    ready: str = ""  # the Ready status last written: True, Unknown ("" before the first)
    transition: str = ""  # its lastTransitionTime
    beat: str = ""  # lastHeartbeatTime last written
    heard: float = 0.0  # monotonic time of the last heartbeat
    written: float = -1e9  # monotonic time the Node status was last written
    renewed: float = -1e9  # monotonic time the Lease was last renewed
    status: dict[str, Any] = field(default_factory=dict)  # what the node last reported
    labels: dict[str, str] = field(default_factory=dict)
    mappers: frozenset[str] = frozenset()  # protocols with a mapper registered on the node
    lost: frozenset[tuple[str, str]] = frozenset()  # (protocol, since) whose mapper stopped
    registered: bool = False


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


NodeFacts = tuple[str | None, frozenset[str], frozenset[tuple[str, str]]]


class NodeLifecycle:
    def __init__(
        self, api: client.ApiClient, grace: float = 40.0, annotations: dict[str, str] | None = None
    ) -> None:
        """`annotations` go on every Node registered (cloudcore's log endpoint)."""
        self.core, self.coordination = client.CoreV1Api(api), client.CoordinationV1Api(api)
        self.grace, self.annotations = grace, dict(annotations or {})
        self.nodes: dict[str, NodeState] = {}
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._started = time.monotonic()
        self.writes = 0  # API writes made (Node and Lease), for benchmarks
        self.loaded = False  # the nodes registered before are known (or could not be listed)

    def facts(self, node: str) -> NodeFacts:
        """(Ready: `True`, `Unknown`, or None for a node never heard of; its mappers; the
        protocols whose mapper stopped, with when)."""
        state = self.nodes.get(node)
        if state is None:
            return None, frozenset(), frozenset()
        return state.ready or None, state.mappers, state.lost

    def heartbeat(self, node: str, report: Any, address: str | None) -> None:
        """A heartbeat from a connected node (raises ValueError for a malformed one)."""
        labels, status = clean_report(report)
        if address and not any(a["type"] == "InternalIP" for a in status["addresses"]):
            status["addresses"].insert(0, {"type": "InternalIP", "address": address})
        state = self.nodes.setdefault(node, NodeState())
        state.heard, state.labels, state.mappers = time.monotonic(), labels, mappers_of(report)
        state.lost = lost_mappers_of(report)
        state.status = status
        self._dirty.add(node)
        self._wake.set()

    def load(self) -> None:
        """After a (re)start: the edge nodes registered before, each given a full grace period
        from now to send a heartbeat (they are reconnecting)."""
        listed = self.core.list_node(label_selector=EDGE_ROLE)
        for item in listed.items:
            ready = next((c for c in (item.status.conditions or []) if c.type == "Ready"), None)
            state = self.nodes.setdefault(item.metadata.name, NodeState())
            state.registered, state.heard = True, self._started
            if ready is not None:
                state.ready = ready.status
                state.transition = _stamp(ready.last_transition_time)
                state.beat = _stamp(ready.last_heartbeat_time)

    async def run(self) -> None:
        try:
            await asyncio.to_thread(self.load)
        except (ApiException, OSError) as exc:  # the API is away: learn nodes from heartbeats
            log.warning("registered nodes not listed: %r", exc)
        self.loaded = True
        while True:
            with contextlib.suppress(TimeoutError):  # heartbeats, or the next grace check
                await asyncio.wait_for(self._wake.wait(), TICK)
            self._wake.clear()
            dirty, self._dirty = self._dirty, set()
            now = time.monotonic()
            silent = [
                n
                for n, s in self.nodes.items()
                if s.ready == "True" and now - s.heard > self.grace and n not in dirty
            ]
            if dirty or silent:
                failed = await asyncio.to_thread(self._sync, sorted(dirty), silent)
                self._dirty.update(failed)  # tried again on the next pass

    def _sync(self, dirty: list[str], silent: list[str]) -> list[str]:
        """Store heartbeats and mark silent nodes (in a worker thread); the nodes that failed."""
        failed = []
        for node in dirty:
            try:
                self._renew(node)
            except ApiException as exc:
                log.warning("node heartbeat not stored: %s", exc.reason, extra={"node": node})
                failed.append(node)
        for node in silent:
            try:
                self._set_ready(node, "Unknown")
                log.warning("node stopped posting status", extra={"node": node})
            except ApiException as exc:
                log.warning("node not marked Unknown: %s", exc.reason, extra={"node": node})
        return failed

    def _renew(self, node: str) -> None:
        state = self.nodes[node]
        if not state.registered:
            self._register(node, state)
        if time.monotonic() - state.renewed >= self.grace / 4:  # kubelet: 10 s of a 40 s lease
            self._lease(node)
            state.renewed = time.monotonic()
        if state.ready != "True" or time.monotonic() - state.written >= REPORT_EVERY:
            self._set_ready(node, "True")

    def _register(self, node: str, state: NodeState) -> None:
        meta = {"name": node, "labels": state.labels, "annotations": self.annotations}
        try:
            self.core.create_node({"apiVersion": "v1", "kind": "Node", "metadata": meta})
            log.info("node registered", extra={"node": node})
        except ApiException as exc:
            if exc.status != 409:
                raise
            self.core.patch_node(node, {"metadata": {"labels": state.labels,
                                                     "annotations": self.annotations}})  # fmt: skip
        self.writes += 1
        state.registered = True

    def _lease(self, node: str) -> None:
        spec = {"holderIdentity": node, "leaseDurationSeconds": int(self.grace),
                "renewTime": _micro_now()}  # fmt: skip
        try:
            write(self.coordination.patch_namespaced_lease, node, LEASE_NAMESPACE, {"spec": spec})
        except ApiException as exc:
            if exc.status != 404:
                raise
            self.coordination.create_namespaced_lease(
                LEASE_NAMESPACE,
                {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                 "metadata": {"name": node, "namespace": LEASE_NAMESPACE}, "spec": spec},
            )  # fmt: skip
        self.writes += 1

    def _set_ready(self, node: str, ready: str) -> None:
        state = self.nodes[node]
        now = _now()
        transition = state.transition if state.ready == ready and state.transition else now
        beat = now if ready == "True" else state.beat or now
        condition = {
            "type": "Ready", "status": ready, "lastTransitionTime": transition,
            "lastHeartbeatTime": beat,
            "reason": "EdgeReady" if ready == "True" else "NodeStatusUnknown",
            "message": "edgecore is posting ready status" if ready == "True"
            else f"edgecore stopped posting node status (nothing for {self.grace:.0f} s)",
        }  # fmt: skip
        status = {**(state.status if ready == "True" else {}), "conditions": [condition]}
        write(self.core.patch_node_status, node, {"status": status})
        self.writes += 1
        state.ready, state.transition, state.beat = ready, transition, beat
        state.written = time.monotonic()
