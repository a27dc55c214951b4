"""Which nodes a pod may run on: the scheduler's filters and score, and the DaemonSet
controller's node selection. Pure.

Filters (as kube-scheduler's): node Ready and schedulable, `nodeSelector`, required node
affinity (matchExpressions In/NotIn/Exists/DoesNotExist/Gt/Lt, matchFields on metadata.name),
taints with effect NoSchedule/NoExecute tolerated, and resource requests (cpu, memory, pods)
within allocatable minus what the node's other pods request. The score prefers the node with
the most CPU left (least allocated), then the name, so placement is deterministic.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from controllers.quantity import parse_quantity

Obj = dict[str, Any]
RESOURCES = ("cpu", "memory")


def _labels(node: Obj) -> dict[str, str]:
    return dict((node.get("metadata") or {}).get("labels") or {})


def _quantity(value: Any) -> Decimal:
    try:
        return Decimal(parse_quantity(value))
    except (ValueError, TypeError, ArithmeticError):
        return Decimal(0)


def ready(node: Obj) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _expression(expr: Obj, value: str | None) -> bool:
    operator, values = expr.get("operator"), [str(v) for v in expr.get("values") or []]
    if operator == "In":
        return value is not None and value in values
    if operator == "NotIn":
        return value is None or value not in values
    if operator == "Exists":
        return value is not None
    if operator == "DoesNotExist":
        return value is None
    if operator in ("Gt", "Lt") and value is not None and values:
        try:
            left, right = int(value), int(values[0])
        except ValueError:
            return False
        return left > right if operator == "Gt" else left < right
    return False


def _term(term: Obj, node: Obj) -> bool:
    labels = _labels(node)
    name = str((node.get("metadata") or {}).get("name", ""))
    exprs = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not exprs and not fields:
        return False  # an empty term matches nothing
    return all(_expression(e, labels.get(str(e.get("key")))) for e in exprs) and all(
        _expression(f, name if f.get("key") == "metadata.name" else None) for f in fields
    )


def _affinity(pod_spec: Obj, node: Obj) -> bool:
    required = ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms")
    return not terms or any(_term(t, node) for t in terms)


def _tolerated(taint: Obj, tolerations: Iterable[Obj]) -> bool:
    for toleration in tolerations:
        effect = toleration.get("effect")
        if effect and effect != taint.get("effect"):
            continue
        key, operator = toleration.get("key"), toleration.get("operator") or "Equal"
        if not key and operator == "Exists":
            return True
        if key != taint.get("key"):
            continue
        if operator == "Exists" or str(toleration.get("value", "")) == str(taint.get("value", "")):
            return True
    return False


def requests(pod_spec: Obj) -> dict[str, Decimal]:
    total = {r: Decimal(0) for r in RESOURCES}
    for container in pod_spec.get("containers") or []:
        asked = ((container or {}).get("resources") or {}).get("requests") or {}
        for resource in RESOURCES:
            if resource in asked:
                total[resource] += _quantity(asked[resource])
    return total


def unfit(pod_spec: Obj, node: Obj, others: list[Obj], check_resources: bool = True,
          effects: tuple[str, ...] = ("NoSchedule", "NoExecute")) -> str:  # fmt: skip
    """Why `pod_spec` cannot go on `node` ("" when it can); `others` are the node's pods;
    `effects`: the taint effects that count (NoExecute alone: may a running pod stay)."""
    spec = node.get("spec") or {}
    if spec.get("unschedulable"):
        return "node(s) were unschedulable"
    selector = pod_spec.get("nodeSelector") or {}
    labels = _labels(node)
    if any(labels.get(k) != str(v) for k, v in selector.items()) or not _affinity(pod_spec, node):
        return "node(s) didn't match Pod's node affinity/selector"
    tolerations = pod_spec.get("tolerations") or []
    for taint in spec.get("taints") or []:
        blocking = taint.get("effect") in effects
        if blocking and not _tolerated(taint, tolerations):
            return f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value', '')}}}"
    if not check_resources:
        return ""
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    if "pods" in allocatable and len(others) + 1 > _quantity(allocatable["pods"]):
        return "Too many pods"
    asked = requests(pod_spec)
    for resource in RESOURCES:
        if asked[resource] and resource in allocatable:
            used = sum((requests(p.get("spec") or {})[resource] for p in others), Decimal(0))
            if used + asked[resource] > _quantity(allocatable[resource]):
                return f"Insufficient {resource}"
    return ""


def choose(pod_spec: Obj, nodes: list[Obj], pods_on: dict[str, list[Obj]]) -> tuple[str, str]:
    """(node name, "") for the best fitting node, or ("", why none fits) as kube-scheduler says
    it: `0/3 nodes are available: 2 Insufficient cpu, 1 node(s) were unschedulable.`"""
    reasons: dict[str, int] = {}
    fits: list[tuple[Decimal, str]] = []
    for node in nodes:
        name = str((node.get("metadata") or {}).get("name", ""))
        why = "node(s) were not ready" if not ready(node) else ""
        why = why or unfit(pod_spec, node, pods_on.get(name, []))
        if why:
            reasons[why] = reasons.get(why, 0) + 1
            continue
        allocatable = _quantity(((node.get("status") or {}).get("allocatable") or {}).get("cpu"))
        used = sum((requests(p.get("spec") or {})["cpu"] for p in pods_on.get(name, [])),
                   Decimal(0))  # fmt: skip
        fits.append((-(allocatable - used), name))
    if fits:
        return min(fits)[1], ""
    detail = ", ".join(f"{count} {why}" for why, count in sorted(reasons.items()))
    return "", f"0/{len(nodes)} nodes are available: {detail or 'no nodes'}."
