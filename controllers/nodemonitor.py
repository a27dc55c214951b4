"""The node lifecycle controller for edge nodes, on one replica (the leader).

As Kubernetes' node lifecycle controller: a node is alive while its Lease is renewed (or its
Ready heartbeat time moves); the time of each renewal is the monitor's own observation, so
clocks that disagree do not matter. A node silent for the Lease's duration becomes
`Ready=Unknown` and gets the `node.kubernetes.io/unreachable` taints (NoSchedule, NoExecute);
once its replica shows it Ready again the taints go. Every replica may restart the monitor
(leadership moves): each node then gets a full lease duration from that moment.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from controllers.informer import Informer
from controllers.leanapi import LeanApi, path_of
from controllers.lister import raw_lister
from controllers.nodes import LEASE_NAMESPACE
from controllers.nodeview import NodeView, ready_of
from kedge import clock

log = logging.getLogger("kedge.controllers")
Obj = dict[str, Any]
UNREACHABLE = "node.kubernetes.io/unreachable"
TICK = 5.0  # seconds between passes over the nodes (Kubernetes' node-monitor-period)


def wanted_taints(node: Obj) -> list[Obj]:
    """The node's taints with the unreachable pair present exactly while Ready is Unknown."""
    taints = [t for t in (node.get("spec") or {}).get("taints") or []
              if isinstance(t, dict) and t.get("key") != UNREACHABLE]  # fmt: skip
    if ((ready_of(node) or {}).get("status")) == "Unknown":
        added = clock.now()
        taints += [{"key": UNREACHABLE, "effect": "NoSchedule"},
                   {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": added}]  # fmt: skip
    return taints


def _unreachable(taints: list[Any]) -> set[str]:
    return {str(t.get("effect")) for t in taints
            if isinstance(t, dict) and t.get("key") == UNREACHABLE}  # fmt: skip


def _retaint(node: Obj) -> list[Obj] | None:
    """The node's taints to write, or None when its unreachable taints are right already."""
    wanted = wanted_taints(node)
    have = (node.get("spec") or {}).get("taints") or []
    return None if _unreachable(wanted) == _unreachable(have) else wanted


class NodeMonitor:
    def __init__(self, api: client.ApiClient, lean: LeanApi, view: NodeView, lease: float) -> None:
        """`lease`: seconds of silence before Unknown, for Leases that do not say."""
        self.coordination, self.lean, self.view, self.lease = (
            client.CoordinationV1Api(api), lean, view, lease)  # fmt: skip
        self._leases: dict[str, tuple[Any, float, float]] = {}  # node -> (renewal, when, duration)
        self._beats: dict[str, tuple[Any, float]] = {}  # node -> (Ready heartbeat time, when)
        self._acted: dict[str, str] = {}  # node -> the resourceVersion last acted on
        self._settled: dict[str, str] = {}  # node -> a resourceVersion whose taints were right
        self._informer: Informer | None = None

    def _lease(self, kind: str, lease: Obj) -> None:
        name = str((lease.get("metadata") or {}).get("name", ""))
        if kind == "DELETED":
            self._leases.pop(name, None)
        elif kind != "SYNCED":
            spec = lease.get("spec") or {}
            seen = self._leases.get(name)
            if seen is None or seen[0] != spec.get("renewTime"):
                duration = spec.get("leaseDurationSeconds")
                duration = float(duration) if isinstance(duration, int) and duration > 0 else 0
                self._leases[name] = (spec.get("renewTime"), time.monotonic(),
                                      duration or self.lease)  # fmt: skip

    def _silence(self, node: str, ready: Obj, since: float) -> tuple[float, float]:
        """(seconds since the node was last seen alive, seconds it may be silent)."""
        beat = self._beats.get(node)
        if beat is None or beat[0] != ready.get("lastHeartbeatTime"):
            beat = self._beats[node] = (ready.get("lastHeartbeatTime"), time.monotonic())
        _renewal, renewed, duration = self._leases.get(node, (None, since, self.lease))
        return time.monotonic() - max(renewed, beat[1], since), duration

    async def run(self) -> None:
        """Until cancelled (leadership lost, or cloudcore stopping)."""
        started = time.monotonic()
        self._leases.clear()
        self._beats.clear()
        self._acted.clear()
        self._settled.clear()
        lister = raw_lister(self.coordination.list_namespaced_lease, namespace=LEASE_NAMESPACE)
        self._informer = Informer("leases", lister, asyncio.get_running_loop(), self._lease)
        self._informer.start()
        try:
            await self.view.synced.wait()
            while True:
                await self._pass(started)
                await asyncio.sleep(TICK)  # the monitor's period (node-monitor-period)
        finally:
            informer, self._informer = self._informer, None
            await asyncio.to_thread(informer.stop)

    async def _pass(self, started: float) -> None:
        for name, node in list(self.view.nodes.items()):
            rv = str((node.get("metadata") or {}).get("resourceVersion"))
            if self._acted.get(name) == rv:
                continue  # our last write is not in the view yet
            ready = ready_of(node) or {}
            quiet, duration = self._silence(name, ready, started)
            try:
                if quiet > duration and ready.get("status") not in ("Unknown", None):
                    await self._mark_unknown(name, ready, duration)
                elif self._settled.get(name) != rv and (taints := _retaint(node)) is not None:
                    await self.lean.patch(path_of("api", "v1", "nodes", name),
                                          {"spec": {"taints": taints}})  # fmt: skip
                else:
                    self._settled[name] = rv  # looked at again only once the Node changes
                    continue
                self._acted[name] = rv
            except ApiException as exc:
                log.warning("node status not updated: %s", exc.reason, extra={"node": name})

    async def _mark_unknown(self, node: str, ready: Obj, duration: float) -> None:
        now = clock.now()
        condition = {
            "type": "Ready", "status": "Unknown", "lastTransitionTime": now,
            "lastHeartbeatTime": ready.get("lastHeartbeatTime") or now,
            "reason": "NodeStatusUnknown",
            "message": f"edgecore stopped posting node status (nothing for {duration:.0f} s)",
        }  # fmt: skip
        await self.lean.patch(path_of("api", "v1", "nodes", node, "status"),
                              {"status": {"conditions": [condition]}})  # fmt: skip
        log.warning("node stopped posting status", extra={"node": node})
