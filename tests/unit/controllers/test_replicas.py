"""DaemonSet and Deployment plans (pure)."""

from __future__ import annotations

import copy
from typing import Any

from controllers.replicas import HASH_LABEL, daemonset_plan, deployment_plan, template_hash

TEMPLATE = {"metadata": {"labels": {"app": "m"}},
            "spec": {"nodeSelector": {"role": "edge"},
                     "containers": [{"name": "m", "image": "kedge/mapper-modbus"}]}}  # fmt: skip


def owner(kind: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "m", "namespace": "ns", "uid": f"{kind}-uid", "generation": 2},
            "spec": {"template": copy.deepcopy(TEMPLATE), **spec}}  # fmt: skip


def node(name: str, role: str = "edge") -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"role": role}}, "spec": {}, "status": {}}


def as_pod(created: dict[str, Any], ready: bool = True, phase: str = "Running") -> dict[str, Any]:
    pod = copy.deepcopy(created)
    condition = {"type": "Ready", "status": "True" if ready else "False"}
    pod["status"] = {"phase": phase, "conditions": [condition]}
    return pod


def test_daemonset_puts_one_pod_on_each_matching_node() -> None:
    ds = owner("ds")
    plan = daemonset_plan(ds, [node("a"), node("b"), node("c", role="cloud")], [])
    assert sorted(p["spec"]["nodeName"] for p in plan.create) == ["a", "b"]
    first = plan.create[0]
    assert first["metadata"]["ownerReferences"][0]["uid"] == "ds-uid"
    assert first["metadata"]["labels"] == {"app": "m", HASH_LABEL: template_hash(TEMPLATE)}
    pods = [as_pod(p) for p in plan.create]
    again = daemonset_plan(ds, [node("a"), node("b")], pods)
    assert again.create == [] and again.delete == []
    assert again.status["desiredNumberScheduled"] == 2 and again.status["numberReady"] == 2
    assert again.status["observedGeneration"] == 2


def test_daemonset_leaves_nodes_that_stop_matching_and_replaces_outdated_pods() -> None:
    ds = owner("ds")
    pods = [as_pod(p) for p in daemonset_plan(ds, [node("a"), node("b")], []).create]
    plan = daemonset_plan(ds, [node("a"), node("b", role="cloud")], pods)
    assert plan.delete == [p["metadata"]["name"] for p in pods if p["spec"]["nodeName"] == "b"]
    assert plan.status["numberMisscheduled"] == 1
    ds["spec"]["template"]["spec"]["containers"][0]["image"] = "kedge/mapper-opcua"
    plan = daemonset_plan(ds, [node("a")], pods[:1])
    assert len(plan.create) == 1 and plan.delete == [pods[0]["metadata"]["name"]]
    assert plan.create[0]["metadata"]["name"] != pods[0]["metadata"]["name"]


def test_daemonset_recreates_a_failed_pod() -> None:
    ds = owner("ds")
    created = daemonset_plan(ds, [node("a")], []).create
    failed = [as_pod(created[0], ready=False, phase="Failed")]
    plan = daemonset_plan(ds, [node("a")], failed)
    assert len(plan.create) == 1 and plan.delete == [created[0]["metadata"]["name"]]


def test_deployment_scales_and_rolls() -> None:
    deployment = owner("deploy", replicas=3)
    plan = deployment_plan(deployment, [])
    assert len(plan.create) == 3 and all("nodeName" not in p["spec"] for p in plan.create)
    pods = [as_pod(p) for p in plan.create]
    deployment["spec"]["replicas"] = 1
    plan = deployment_plan(deployment, pods)
    assert plan.create == [] and len(plan.delete) == 2
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = "kedge/python"
    rolled = deployment_plan(deployment, pods[:1])
    assert len(rolled.create) == 1 and rolled.delete == []  # old stays until the new is ready
    done = deployment_plan(deployment, [*pods[:1], as_pod(rolled.create[0])])
    assert done.delete == [pods[0]["metadata"]["name"]]
    assert done.status["updatedReplicas"] == 1 and done.status["readyReplicas"] == 2
    deployment["spec"]["strategy"] = {"type": "Recreate"}
    assert deployment_plan(deployment, pods[:1]).delete == [pods[0]["metadata"]["name"]]


def test_daemonset_keeps_its_pods_on_a_node_that_lost_the_cloud() -> None:
    """As Kubernetes' DaemonSet controller: daemon pods tolerate not-ready and unreachable
    (NoExecute), so a node cut off from the cloud keeps its mappers."""
    ds = owner("ds")
    pods = [as_pod(p) for p in daemonset_plan(ds, [node("a")], []).create]
    assert {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
            "effect": "NoExecute"} in pods[0]["spec"]["tolerations"]  # fmt: skip
    cut_off = node("a")
    cut_off["spec"]["taints"] = [
        {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"},
    ]
    plan = daemonset_plan(ds, [cut_off], pods)
    assert plan.delete == [] and plan.create == []
    tainted = node("a")
    tainted["spec"]["taints"] = [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]
    assert daemonset_plan(ds, [tainted], pods).delete == []  # NoSchedule evicts nothing
    tainted["spec"]["taints"][0]["effect"] = "NoExecute"
    assert daemonset_plan(ds, [tainted], pods).delete  # other NoExecute taints still count
