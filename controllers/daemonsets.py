"""DaemonSets: one current pod on every node the template may run on, updated as Kubernetes'
DaemonSet controller does (RollingUpdate: at most `maxUnavailable` nodes without an available
daemon at a time, default 1; OnDelete: a pod is replaced only once someone deletes it), and
the revision history `kubectl rollout history|undo daemonset` reads (ControllerRevisions). Pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from controllers.placement import unfit
from controllers.replicas import (
    Plan,
    active,
    available_in,
    controller_ref,
    count,
    finished,
    new_pod,
    owned_by,
    ready,
    short_hash,
    template_hash,
)
from controllers.rollout import LAST_APPLIED, scaled

Obj = dict[str, Any]
REVISION_LABEL = "controller-revision-hash"
# what Kubernetes' DaemonSet controller adds to every daemon pod: a node that lost its cloud
# connection (or is not ready) keeps its daemons (its mappers) instead of having them evicted
DAEMON_TOLERATIONS = [
    {"key": f"node.kubernetes.io/{key}", "operator": "Exists", "effect": "NoExecute"}
    for key in ("not-ready", "unreachable")
]


def daemon_spec(template: Obj) -> Obj:
    spec = dict(template.get("spec") or {})
    tolerations = list(spec.get("tolerations") or [])
    spec["tolerations"] = tolerations + [t for t in DAEMON_TOLERATIONS if t not in tolerations]
    return spec


def _revision_of(pod: Obj) -> str:
    return str(((pod.get("metadata") or {}).get("labels") or {}).get(REVISION_LABEL, ""))


def _nodes(spec: Obj, nodes: list[Obj]) -> tuple[list[str], set[str]]:
    """Nodes to run on; nodes a running daemon may stay on (only NoExecute taints evict)."""
    eligible, staying = [], set()
    for node in nodes:
        name = str(node["metadata"]["name"])
        if not unfit(spec, node, [], check_resources=False):
            eligible.append(name)
        if not unfit(spec, node, [], check_resources=False, effects=("NoExecute",)):
            staying.add(name)
    return eligible, staying


@dataclass
class _Pass:
    """One node-by-node look at a DaemonSet's pods."""

    current: str
    min_ready: int
    now: float
    plan: Plan = field(default_factory=Plan)
    unavailable: int = 0
    outdated: list[tuple[bool, str, list[str]]] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)

    def available(self, pod: Obj) -> bool:
        return available_in(pod, self.min_ready, self.now) == 0

    def node(self, ds: Obj, name: str, held: list[Obj], spec: Obj) -> None:
        running = active(held)
        fresh = [p for p in running if _revision_of(p) == self.current]
        waits = [available_in(p, self.min_ready, self.now) for p in running]
        self.waits += [w for w in waits if w]
        available = any(w == 0 for w in waits)
        if not available:
            self.unavailable += 1
        if all(finished(p) for p in held):  # none, or only finished ones: none terminating
            labels = {**((ds["spec"].get("template") or {}).get("metadata") or {}).get(
                "labels", {}), REVISION_LABEL: self.current}  # fmt: skip
            pod_name = f"{ds['metadata']['name']}-{self.current[:5]}-{short_hash(name, 5)}"
            self.plan.create.append(new_pod(ds, "DaemonSet", pod_name,
                                            {**spec, "nodeName": name}, labels))  # fmt: skip
        elif fresh:  # the update is done here: anything else on the node goes
            self.plan.delete += [str(p["metadata"]["name"]) for p in running if p is not fresh[0]]
        elif running:
            names = [str(p["metadata"]["name"]) for p in running]
            self.outdated.append((available, name, names))


def daemonset_plan(ds: Obj, nodes: list[Obj], pods: list[Obj], now: float) -> Plan:
    meta, spec = ds["metadata"], ds.get("spec") or {}
    template = spec.get("template") or {}
    pod_spec = daemon_spec(template)
    eligible, staying = _nodes(pod_spec, nodes)
    mine = owned_by(pods, str(meta["uid"]))
    by_node: dict[str, list[Obj]] = {}
    for pod in mine:
        by_node.setdefault(str((pod.get("spec") or {}).get("nodeName", "")), []).append(pod)
    look = _Pass(template_hash(template), count(spec.get("minReadySeconds"), 0), now)
    for name in eligible:
        look.node(ds, name, by_node.get(name, []), pod_spec)
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") == "RollingUpdate":
        rolling = strategy.get("rollingUpdate") or {}
        budget = scaled(rolling.get("maxUnavailable", 1), len(eligible), True) or 1
        for was_available, _node, names in sorted(look.outdated):  # unavailable ones first
            if was_available:
                if look.unavailable >= budget:
                    break
                look.unavailable += 1
            look.plan.delete += names
    for node_name, held in by_node.items():
        for pod in held:
            if node_name not in staying or finished(pod):
                look.plan.delete.append(str(pod["metadata"]["name"]))
    look.plan.status = _status(meta, eligible, by_node, look)
    look.plan.recheck = min(look.waits) if look.waits else None
    return look.plan


def _status(meta: Obj, eligible: list[str], by_node: dict[str, list[Obj]], look: _Pass) -> Obj:
    on = {n: active(by_node.get(n, [])) for n in eligible}
    available = sum(1 for pods in on.values() if any(look.available(p) for p in pods))
    status = {
        "desiredNumberScheduled": len(eligible),
        "currentNumberScheduled": sum(1 for pods in on.values() if pods),
        "numberMisscheduled": sum(1 for n, pods in by_node.items()
                                  if n not in on and active(pods)),  # fmt: skip
        "numberReady": sum(1 for pods in on.values() if any(ready(p) for p in pods)),
        "numberAvailable": available,
        "updatedNumberScheduled": sum(1 for pods in on.values()
                                      if any(_revision_of(p) == look.current for p in pods)),
        "observedGeneration": meta.get("generation", 1),
    }  # fmt: skip
    if len(eligible) > available:
        status["numberUnavailable"] = len(eligible) - available
    return status


@dataclass
class History:
    create: list[Obj] = field(default_factory=list)
    revise: dict[str, int] = field(default_factory=dict)  # ControllerRevision -> new revision
    delete: list[str] = field(default_factory=list)


def history_plan(ds: Obj, revisions: list[Obj]) -> History:
    """The template's ControllerRevision exists and has the highest revision (an undo makes an
    old one current again); the oldest beyond `revisionHistoryLimit` (default 10) go."""
    meta, spec = ds["metadata"], ds.get("spec") or {}
    template = spec.get("template") or {}
    current = template_hash(template)
    mine = owned_by(revisions, str(meta["uid"]))
    top = max((count(r.get("revision"), 0) for r in mine), default=0)
    match = next((r for r in mine if _revision_of(r) == current), None)
    plan = History()
    if match is None:
        labels = {**((template.get("metadata") or {}).get("labels") or {}),
                  REVISION_LABEL: current}  # fmt: skip
        annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                       if k != LAST_APPLIED}  # fmt: skip
        plan.create.append({
            "apiVersion": "apps/v1", "kind": "ControllerRevision",
            "metadata": {"name": f"{meta['name']}-{current}", "namespace": meta.get("namespace"),
                         "labels": labels, "annotations": annotations,
                         "ownerReferences": [controller_ref(ds, "DaemonSet")]},
            "data": {"spec": {"template": {**template, "$patch": "replace"}}},
            "revision": top + 1,
        })  # fmt: skip
    elif count(match.get("revision"), 0) < top:
        plan.revise[str(match["metadata"]["name"])] = top + 1
    others = sorted((r for r in mine if r is not match), key=lambda r: count(r.get("revision"), 0))
    excess = len(others) - count(spec.get("revisionHistoryLimit"), 10)
    plan.delete = [str(r["metadata"]["name"]) for r in others[: max(0, excess)]]
    return plan
