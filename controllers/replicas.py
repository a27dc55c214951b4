"""ReplicaSets: which pods to create and delete, and their status, as Kubernetes' ReplicaSet
controller decides it. Pure; the pieces every workload plan shares are here too.

Pod names are deterministic (`<replicaset>-<5 characters>`, the first free ones), so a create
repeated before the informer saw the first one fails with AlreadyExists instead of making a
second pod; a scale-down picks the same pods on every pass (unscheduled, then not ready, then
the newest), so a repeated pass cannot delete more than asked. No in-flight bookkeeping needed.
"""

from __future__ import annotations

import datetime
import hashlib
import itertools
from dataclasses import dataclass, field
from typing import Any

import orjson

Obj = dict[str, Any]
HASH_LABEL = "pod-template-hash"


@dataclass
class Plan:
    create: list[Obj] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)  # pod names
    status: Obj = field(default_factory=dict)
    recheck: float | None = None  # seconds until time alone changes the plan (minReadySeconds)


def short_hash(text: str, size: int = 10) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:size]


def template_hash(template: Obj) -> str:
    return short_hash(orjson.dumps(template, option=orjson.OPT_SORT_KEYS).decode())


def owned_by(objects: list[Obj], uid: str) -> list[Obj]:
    return [
        o for o in objects
        if any(r.get("uid") == uid and r.get("controller")
               for r in (o.get("metadata") or {}).get("ownerReferences") or [])
    ]  # fmt: skip


def ready(pod: Obj) -> bool:
    return _ready_since(pod) is not None


def _ready_since(pod: Obj) -> float | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready" and condition.get("status") == "True":
            return seconds(condition.get("lastTransitionTime")) or 0.0
    return None


def seconds(stamp: Any) -> float | None:
    """A metav1.Time as Unix seconds (None when absent or unreadable)."""
    try:
        return datetime.datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def available_in(pod: Obj, min_ready: int, now: float) -> float | None:
    """Seconds until a ready pod counts as available (0: available now; None: not ready)."""
    since = _ready_since(pod)
    return None if since is None else max(0.0, since + min_ready - now)


def finished(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def active(pods: list[Obj]) -> list[Obj]:
    """Pods that count: not finished, not being deleted."""
    return [p for p in pods if not finished(p) and not (p.get("metadata") or {}).get(
        "deletionTimestamp")]  # fmt: skip


def count(value: Any, default: int = 1) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else (
        default)  # fmt: skip


def new_pod(owner: Obj, kind: str, name: str, spec: Obj, labels: Obj) -> Obj:
    meta, template = owner["metadata"], (owner.get("spec") or {}).get("template") or {}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": meta.get("namespace", "default"),
            "labels": labels,
            "annotations": dict((template.get("metadata") or {}).get("annotations") or {}),
            "ownerReferences": [controller_ref(owner, kind)],
        },
        "spec": spec,
    }


def controller_ref(owner: Obj, kind: str) -> Obj:
    meta = owner["metadata"]
    return {"apiVersion": "apps/v1", "kind": kind, "name": meta["name"], "uid": meta["uid"],
            "controller": True, "blockOwnerDeletion": True}  # fmt: skip


def _deletion_order(pods: list[Obj]) -> list[Obj]:
    """Kubernetes' choice of pods to remove first: unscheduled, not ready, newest."""
    newest = sorted(pods, key=lambda p: (str(p["metadata"].get("creationTimestamp", "")),
                                         str(p["metadata"]["name"])), reverse=True)  # fmt: skip
    return sorted(newest, key=lambda p: (bool((p.get("spec") or {}).get("nodeName")), ready(p)))


def replicaset_plan(rs: Obj, pods: list[Obj], now: float) -> Plan:
    """`spec.replicas` active pods from the template; finished ones replaced."""
    meta, spec = rs["metadata"], rs.get("spec") or {}
    template, wanted = spec.get("template") or {}, count(spec.get("replicas"))
    mine = owned_by(pods, str(meta["uid"]))
    running = active(mine)
    plan = Plan(delete=[str(p["metadata"]["name"]) for p in mine if finished(p)])
    if len(running) < wanted:
        taken = {str(p["metadata"]["name"]) for p in mine}
        base = str(meta["name"])
        names = (f"{base}-{short_hash(f'{base}/{i}', 5)}" for i in itertools.count())
        labels = dict((template.get("metadata") or {}).get("labels") or {})
        for name in itertools.islice((n for n in names if n not in taken), wanted - len(running)):
            plan.create.append(new_pod(rs, "ReplicaSet", name, dict(template.get("spec") or {}),
                                       labels))  # fmt: skip
    else:
        plan.delete += [str(p["metadata"]["name"])
                        for p in _deletion_order(running)[: len(running) - wanted]]  # fmt: skip
    waits = [available_in(p, count(spec.get("minReadySeconds"), 0), now) for p in running]
    plan.status = {
        "replicas": len(running),
        "fullyLabeledReplicas": len(running),
        "readyReplicas": sum(1 for w in waits if w is not None),
        "availableReplicas": sum(1 for w in waits if w == 0),
        "observedGeneration": meta.get("generation", 1),
    }
    pending = [w for w in waits if w]
    plan.recheck = min(pending) if pending else None
    return plan
