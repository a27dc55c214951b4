"""Deployments over ReplicaSets, as Kubernetes' deployment controller runs them. Pure.

Each template gets a ReplicaSet (`<deployment>-<template hash>`, the hash also in its selector
and pod labels) with a `deployment.kubernetes.io/revision`; the ReplicaSet of an older template
becomes current again with the next revision (`kubectl rollout undo`). RollingUpdate scales the
new set up within `maxSurge` and old sets down within `maxUnavailable` (25 % each by default);
Recreate empties the old sets first. Status and the Available and Progressing conditions (with
`progressDeadlineSeconds`) are what `kubectl rollout status` reads. Old sets beyond
`revisionHistoryLimit` are deleted. A paused Deployment only scales.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from controllers.progress import Moment, conditions
from controllers.replicas import (
    HASH_LABEL,
    controller_ref,
    count,
    finished,
    owned_by,
    template_hash,
)

Obj = dict[str, Any]
REVISION = "deployment.kubernetes.io/revision"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
NOT_COPIED = {
    REVISION,
    DESIRED,
    MAX_REPLICAS,
    LAST_APPLIED,
    "deployment.kubernetes.io/revision-history",
}


def scaled(value: Any, total: int, round_up: bool) -> int:
    """An IntOrString (`3`, `"25%"`) against `total`, as Kubernetes resolves it."""
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        exact = int(value[:-1]) * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return count(value, 0)


def revision(rs: Obj) -> int:
    text = str(((rs.get("metadata") or {}).get("annotations") or {}).get(REVISION, "0"))
    return int(text) if text.isdigit() else 0


def _replicas(rs: Obj) -> int:
    return count((rs.get("spec") or {}).get("replicas"), 0)


def _stat(rs: Obj | None, name: str) -> int:
    return count(((rs or {}).get("status") or {}).get(name), 0)


@dataclass
class Rollout:
    create: list[Obj] = field(default_factory=list)  # new ReplicaSets
    patch: dict[str, Obj] = field(default_factory=dict)  # ReplicaSet name -> merge patch
    delete: list[str] = field(default_factory=list)  # ReplicaSets beyond the history limit
    revision: str = ""  # the Deployment's revision annotation, when it must change
    status: Obj = field(default_factory=dict)
    recheck: float | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    replicas: int
    surge: int
    unavailable: int
    rolling: bool


def limits(spec: Obj) -> Limits:
    replicas = count(spec.get("replicas"))
    strategy = spec.get("strategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return Limits(replicas, 0, 0, False)
    rolling = strategy.get("rollingUpdate") or {}
    surge = scaled(rolling.get("maxSurge", "25%"), replicas, True)
    unavailable = scaled(rolling.get("maxUnavailable", "25%"), replicas, False)
    return Limits(replicas, surge, 1 if surge == unavailable == 0 else unavailable, True)


def new_replica_set(deployment: Obj, hash_: str, number: int, replicas: int, top: Limits) -> Obj:
    meta, spec = deployment["metadata"], deployment.get("spec") or {}
    template = spec.get("template") or {}
    template_meta = dict(template.get("metadata") or {})
    labels = {**(template_meta.get("labels") or {}), HASH_LABEL: hash_}
    selector = dict(spec.get("selector") or {})
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH_LABEL: hash_}
    return {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": f"{meta['name']}-{hash_}", "namespace": meta.get("namespace"),
                     "labels": labels, "annotations": _annotations(deployment, number, top),
                     "ownerReferences": [controller_ref(deployment, "Deployment")]},
        "spec": {"replicas": replicas, "minReadySeconds": count(spec.get("minReadySeconds"), 0),
                 "selector": selector,
                 "template": {**template, "metadata": {**template_meta, "labels": labels}}},
    }  # fmt: skip


def _annotations(deployment: Obj, number: int, top: Limits) -> dict[str, str]:
    own = (deployment["metadata"].get("annotations") or {}).items()
    return {**{k: v for k, v in own if k not in NOT_COPIED}, REVISION: str(number),
            DESIRED: str(top.replicas), MAX_REPLICAS: str(top.replicas + top.surge)}  # fmt: skip


def _rolling(want: dict[str, int], new: str, sets: dict[str, Obj], top: Limits) -> None:
    """One step of a rolling update, as Kubernetes' reconcileNewReplicaSet/OldReplicaSets."""
    total = sum(want.values())
    if want[new] > top.replicas:
        want[new] = top.replicas
    elif want[new] < top.replicas:
        want[new] = min(top.replicas, want[new] + max(0, top.replicas + top.surge - total))
    min_available = top.replicas - top.unavailable
    olds = sorted((n for n in want if n != new), key=lambda n: revision(sets[n]))
    pods = sum(_stat(sets.get(n), "replicas") for n in want)
    new_unavailable = max(0, want[new] - _stat(sets.get(new), "availableReplicas"))
    cleanup = pods - min_available - new_unavailable
    for name in olds:  # old replicas that are not available anyway go first
        unhealthy = want[name] - _stat(sets[name], "availableReplicas")
        take = max(0, min(unhealthy, cleanup))
        want[name], cleanup = want[name] - take, cleanup - take
    available = sum(_stat(sets.get(n), "availableReplicas") for n in want)
    spare = available - min_available
    for name in olds:
        take = max(0, min(want[name], spare))
        want[name], spare = want[name] - take, spare - take


def _paused(want: dict[str, int], new: str | None, top: Limits) -> None:
    """Paused: the replica count changes, the rollout does not (the newest set takes it)."""
    names = sorted(want, key=lambda n: (n != new, n))
    diff = top.replicas - sum(want.values())
    for name in names:
        step = max(diff, -want[name])
        want[name], diff = want[name] + step, diff - step
        if diff == 0:
            break


def _recreate(want: dict[str, int], new: str, old_pods: bool, top: Limits) -> None:
    """Recreate: every old set to 0; the new one up once no old pod is left at all."""
    for name in want:
        if name != new:
            want[name] = 0
    if not old_pods:
        want[new] = top.replicas


def _hash_of(rs: Obj) -> str:
    return str(((rs.get("metadata") or {}).get("labels") or {}).get(HASH_LABEL, ""))


def deployment_rollout(deployment: Obj, owned: list[Obj], pods: list[Obj], at: Moment
                       ) -> Rollout:  # fmt: skip
    """What to do with the Deployment's ReplicaSets (`owned`) this pass; `pods` for Recreate."""
    spec = deployment.get("spec") or {}
    top, current = limits(spec), template_hash(spec.get("template") or {})
    sets = {str(rs["metadata"]["name"]): rs for rs in owned}
    new = next((n for n, rs in sets.items() if _hash_of(rs) == current), None)
    highest = max((revision(rs) for n, rs in sets.items() if n != new), default=0)
    want, out = {n: _replicas(rs) for n, rs in sets.items()}, Rollout()
    if new is None and not spec.get("paused"):
        made = new_replica_set(deployment, current, highest + 1, 0, top)
        new = str(made["metadata"]["name"])
        out.create.append(made)
        sets[new], want[new] = made, 0
    if spec.get("paused"):
        _paused(want, new, top)
    elif new is not None and top.rolling:
        _rolling(want, new, sets, top)
    elif new is not None:
        olds = [str(rs["metadata"]["uid"]) for n, rs in sets.items() if n != new and n not in
                {str(m["metadata"]["name"]) for m in out.create}]  # fmt: skip
        _recreate(want, new, any(not finished(p) for uid in olds for p in owned_by(pods, uid)),
                  top)  # fmt: skip
    for made in out.create:
        made["spec"]["replicas"] = want[str(made["metadata"]["name"])]
    _patches(deployment, sets, want, new, highest, top, out)
    _history(spec, sets, want, new, out)
    out.status, out.recheck = _status(deployment, sets, want, new, bool(out.create), top, at)
    return out


def _patches(deployment: Obj, sets: dict[str, Obj], want: dict[str, int], new: str | None,
             highest: int, top: Limits, out: Rollout) -> None:  # fmt: skip
    created = {str(m["metadata"]["name"]) for m in out.create}
    for name, rs in sets.items():
        if name in created:
            continue
        patch: Obj = {}
        if want[name] != _replicas(rs):
            patch["spec"] = {"replicas": want[name]}
        if name == new:
            number = revision(rs) if revision(rs) > highest else highest + 1
            wanted = _annotations(deployment, number, top)
            have = rs["metadata"].get("annotations") or {}
            if any(have.get(k) != v for k, v in wanted.items()):
                patch["metadata"] = {"annotations": wanted}
        if patch:
            out.patch[name] = patch
    if new is not None:
        shown = (out.patch.get(new, {}).get("metadata") or {}).get("annotations") or (
            sets[new]["metadata"].get("annotations") or {})  # fmt: skip
        shown_number = str(shown.get(REVISION, ""))
        if shown_number != (deployment["metadata"].get("annotations") or {}).get(REVISION):
            out.revision = shown_number


def _history(spec: Obj, sets: dict[str, Obj], want: dict[str, int], new: str | None,
             out: Rollout) -> None:  # fmt: skip
    """Old, empty sets beyond `revisionHistoryLimit` (default 10), oldest first."""
    empty = sorted((n for n, rs in sets.items()
                    if n != new and want[n] == 0 and _stat(rs, "replicas") == 0),
                   key=lambda n: revision(sets[n]))  # fmt: skip
    out.delete = empty[: max(0, len(empty) - count(spec.get("revisionHistoryLimit"), 10))]


def _status(deployment: Obj, sets: dict[str, Obj], want: dict[str, int], new: str | None,
            created: bool, top: Limits, at: Moment) -> tuple[Obj, float | None]:  # fmt: skip
    def total(name: str) -> int:
        return sum(_stat(rs, name) for rs in sets.values())

    status: Obj = {
        "observedGeneration": deployment["metadata"].get("generation", 1),
        "replicas": total("replicas"),
        "updatedReplicas": _stat(sets.get(new) if new else None, "replicas"),
        "readyReplicas": total("readyReplicas"),
        "availableReplicas": total("availableReplicas"),
        "unavailableReplicas": max(0, sum(want.values()) - total("availableReplicas")),
    }
    found, recheck = conditions(deployment, status, new or "", created,
                                top.replicas - top.unavailable, at)  # fmt: skip
    status["conditions"] = found
    return status, recheck
