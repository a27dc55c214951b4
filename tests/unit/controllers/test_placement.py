"""Scheduler filters and the node choice (pure)."""

from __future__ import annotations

from typing import Any

from controllers.placement import choose, unfit


def node(name: str, labels: dict[str, str] | None = None, ready: bool = True,
         taints: list[dict[str, str]] | None = None, cpu: str = "2", memory: str = "4Gi",
         pods: str = "110", unschedulable: bool = False) -> dict[str, Any]:  # fmt: skip
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"taints": taints or [], "unschedulable": unschedulable},
        "status": {
            "allocatable": {"cpu": cpu, "memory": memory, "pods": pods},
            "conditions": [{"type": "Ready", "status": "True" if ready else "Unknown"}],
        },
    }


def pod_spec(cpu: str = "", **more: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "c", "image": "kedge/python"}
    if cpu:
        container["resources"] = {"requests": {"cpu": cpu}}
    return {"containers": [container], **more}


def on(name: str, cpu: str) -> dict[str, Any]:
    return {"spec": {"nodeName": name, **pod_spec(cpu)}}


def test_node_selector_and_required_affinity() -> None:
    edge = node("a", {"site": "lab", "zone": "3"})
    assert unfit(pod_spec(nodeSelector={"site": "lab"}), edge, []) == ""
    assert "selector" in unfit(pod_spec(nodeSelector={"site": "plant"}), edge, [])
    term = {"matchExpressions": [{"key": "zone", "operator": "Gt", "values": ["2"]},
                                 {"key": "gpu", "operator": "DoesNotExist"}]}  # fmt: skip
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [term]}}}  # fmt: skip
    assert unfit(pod_spec(affinity=affinity), edge, []) == ""
    term["matchExpressions"][0]["values"] = ["3"]
    assert unfit(pod_spec(affinity=affinity), edge, []) != ""
    by_name = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a"]}]}
    affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"].append(by_name)  # fmt: skip
    assert unfit(pod_spec(affinity=affinity), edge, []) == ""


def test_taints_need_tolerations() -> None:
    tainted = node("a", taints=[{"key": "edge", "value": "yes", "effect": "NoSchedule"}])
    assert "untolerated taint" in unfit(pod_spec(), tainted, [])
    equal = [{"key": "edge", "operator": "Equal", "value": "yes", "effect": "NoSchedule"}]
    assert unfit(pod_spec(tolerations=equal), tainted, []) == ""
    assert unfit(pod_spec(tolerations=[{"operator": "Exists"}]), tainted, []) == ""
    wrong = [{"key": "edge", "value": "no"}]
    assert unfit(pod_spec(tolerations=wrong), tainted, []) != ""
    soft = node("b", taints=[{"key": "x", "effect": "PreferNoSchedule"}])
    assert unfit(pod_spec(), soft, []) == ""


def test_resources_count_the_other_pods() -> None:
    small = node("a", cpu="1", pods="2")
    assert unfit(pod_spec("600m"), small, [on("a", "300m")]) == ""
    assert unfit(pod_spec("800m"), small, [on("a", "300m")]) == "Insufficient cpu"
    assert unfit(pod_spec(), small, [on("a", ""), on("a", "")]) == "Too many pods"


def test_choose_prefers_free_cpu_and_explains_failure() -> None:
    nodes = [node("a", cpu="2"), node("b", cpu="4"), node("c", ready=False)]
    assert choose(pod_spec("1"), nodes, {}) == ("b", "")
    assert choose(pod_spec("1"), nodes, {"b": [on("b", "3500m")]}) == ("a", "")
    name, why = choose(pod_spec("8"), nodes, {})
    assert name == ""
    assert why == "0/3 nodes are available: 2 Insufficient cpu, 1 node(s) were not ready."
    cordoned = [node("a", unschedulable=True)]
    assert choose(pod_spec(), cordoned, {})[1].endswith("1 node(s) were unschedulable.")
