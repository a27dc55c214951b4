"""What DaemonSets and Deployments want: which pods to create and delete, and their status. Pure.

Pod names are deterministic (`<daemonset>-<template hash>-<node hash>`, `<deployment>-<template
hash>-<index>`), so a create repeated before the informer saw the first one fails with
AlreadyExists instead of making a second pod; no in-flight bookkeeping is needed. A Deployment
owns its pods directly (there is no ReplicaSet here); pods carry `pod-template-hash` as
Kubernetes' do. Updates replace outdated pods: a DaemonSet's at once, a Deployment's once the
new ones are ready (RollingUpdate) or at once (Recreate).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from controllers.placement import unfit

Obj = dict[str, Any]
HASH_LABEL = "pod-template-hash"


@dataclass
class Plan:
    create: list[Obj] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)  # pod names
    status: Obj = field(default_factory=dict)


def _short(text: str, size: int = 10) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:size]


def template_hash(template: Obj) -> str:
    return _short(orjson.dumps(template, option=orjson.OPT_SORT_KEYS).decode())


def owned_by(pods: list[Obj], uid: str) -> list[Obj]:
    return [
        p for p in pods
        if any(r.get("uid") == uid and r.get("controller")
               for r in (p.get("metadata") or {}).get("ownerReferences") or [])
    ]  # fmt: skip


def _ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _hash_of(pod: Obj) -> str:
    return str(((pod.get("metadata") or {}).get("labels") or {}).get(HASH_LABEL, ""))


def _finished(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def new_pod(owner: Obj, kind: str, name: str, node: str = "") -> Obj:
    meta, template = owner["metadata"], (owner.get("spec") or {}).get("template") or {}
    labels = {**((template.get("metadata") or {}).get("labels") or {}),
              HASH_LABEL: template_hash(template)}  # fmt: skip
    spec = daemon_spec(template) if kind == "DaemonSet" else dict(template.get("spec") or {})
    if node:
        spec["nodeName"] = node
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": meta.get("namespace", "default"),
            "labels": labels,
            "annotations": dict((template.get("metadata") or {}).get("annotations") or {}),
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": kind,
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },  # fmt: skip
        "spec": spec,
    }


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


def daemonset_plan(ds: Obj, nodes: list[Obj], pods: list[Obj]) -> Plan:
    """One current pod on every node the template may run on; none elsewhere."""
    meta, template = ds["metadata"], (ds.get("spec") or {}).get("template") or {}
    current = template_hash(template)
    mine = owned_by(pods, str(meta["uid"]))
    by_node: dict[str, list[Obj]] = {}
    for pod in mine:
        by_node.setdefault(str((pod.get("spec") or {}).get("nodeName", "")), []).append(pod)
    plan, spec = Plan(), daemon_spec(template)
    eligible, staying = [], []  # nodes to run on; nodes a running pod may stay on (NoExecute)
    for node in nodes:
        name = str(node["metadata"]["name"])
        if not unfit(spec, node, [], check_resources=False):
            eligible.append(name)
        if not unfit(spec, node, [], check_resources=False, effects=("NoExecute",)):
            staying.append(name)
    for name in eligible:
        running = [p for p in by_node.get(name, []) if not _finished(p)]
        if not any(_hash_of(p) == current for p in running):
            plan.create.append(
                new_pod(ds, "DaemonSet", f"{meta['name']}-{current[:5]}-{_short(name, 5)}", name)
            )
    for node_name, held in by_node.items():
        for pod in held:
            if node_name not in staying or _hash_of(pod) != current or _finished(pod):
                plan.delete.append(str(pod["metadata"]["name"]))
    on_eligible = [p for p in mine if (p.get("spec") or {}).get("nodeName") in eligible]
    updated = [p for p in on_eligible if _hash_of(p) == current]
    plan.status = {
        "desiredNumberScheduled": len(eligible),
        "currentNumberScheduled": len({(p.get("spec") or {}).get("nodeName") for p in on_eligible}),
        "numberMisscheduled": len({n for n in by_node if n not in eligible}),
        "numberReady": sum(1 for p in on_eligible if _ready(p)),
        "numberAvailable": sum(1 for p in on_eligible if _ready(p)),
        "updatedNumberScheduled": len({(p.get("spec") or {}).get("nodeName") for p in updated}),
        "observedGeneration": meta.get("generation", 1),
    }
    unavailable = plan.status["desiredNumberScheduled"] - plan.status["numberAvailable"]
    if unavailable > 0:
        plan.status["numberUnavailable"] = unavailable
    return plan


def deployment_plan(deployment: Obj, pods: list[Obj]) -> Plan:
    meta, spec = deployment["metadata"], deployment.get("spec") or {}
    replicas = spec.get("replicas", 1)
    replicas = replicas if isinstance(replicas, int) and replicas >= 0 else 1
    current = template_hash(spec.get("template") or {})
    mine = [p for p in owned_by(pods, str(meta["uid"])) if not _finished(p)]
    new = {str(p["metadata"]["name"]): p for p in mine if _hash_of(p) == current}
    old = [p for p in mine if _hash_of(p) != current]
    plan = Plan()
    wanted = [f"{meta['name']}-{current}-{index}" for index in range(replicas)]
    plan.create = [new_pod(deployment, "Deployment", n) for n in wanted if n not in new]
    plan.delete = [n for n in new if n not in wanted]
    plan.delete += [str(p["metadata"]["name"]) for p in owned_by(pods, str(meta["uid"]))
                    if _finished(p)]  # fmt: skip
    ready_new = sum(1 for n in wanted if n in new and _ready(new[n]))
    recreate = (spec.get("strategy") or {}).get("type") == "Recreate"
    if recreate or ready_new >= replicas:
        plan.delete += [str(p["metadata"]["name"]) for p in old]
    ready = sum(1 for p in mine if _ready(p))
    plan.status = {
        "observedGeneration": meta.get("generation", 1),
        "replicas": len(mine),
        "updatedReplicas": len(new),
        "readyReplicas": ready,
        "availableReplicas": ready,
        "unavailableReplicas": max(0, replicas - ready),
        "conditions": [{
            "type": "Available", "status": "True" if ready >= replicas else "False",
            "reason": "MinimumReplicasAvailable" if ready >= replicas
            else "MinimumReplicasUnavailable",
        }],
    }  # fmt: skip
    return plan
