"""DaemonSet plans (pure): one pod per fitting node, rolling updates within maxUnavailable,
OnDelete, daemons kept on a node cut off from the cloud, revision history."""

from __future__ import annotations

from controllers.daemonsets import REVISION_LABEL, daemonset_plan, history_plan
from controllers.replicas import template_hash
from tests.unit.controllers.workload_objects import TEMPLATE, Obj, as_pod, as_stored, node, owner

NOW = 1_800_000_000.0


def _running(ds: Obj, nodes: list[Obj]) -> list[Obj]:
    return [as_pod(p) for p in daemonset_plan(ds, nodes, [], NOW).create]


def test_daemonset_puts_one_pod_on_each_matching_node() -> None:
    ds = owner("ds")
    plan = daemonset_plan(ds, [node("a"), node("b"), node("c", role="cloud")], [], NOW)
    assert sorted(p["spec"]["nodeName"] for p in plan.create) == ["a", "b"]
    first = plan.create[0]
    assert first["metadata"]["ownerReferences"][0]["uid"] == "ds-uid"
    assert first["metadata"]["labels"] == {"app": "m", REVISION_LABEL: template_hash(TEMPLATE)}
    again = daemonset_plan(ds, [node("a"), node("b")], [as_pod(p) for p in plan.create], NOW)
    assert again.create == [] and again.delete == []
    assert again.status["desiredNumberScheduled"] == 2 and again.status["numberAvailable"] == 2
    assert again.status["updatedNumberScheduled"] == 2 and again.status["observedGeneration"] == 2


def test_a_rolling_update_replaces_at_most_max_unavailable_nodes_at_a_time() -> None:
    ds = owner("ds")
    nodes = [node(n) for n in "abcd"]
    pods = _running(ds, nodes)
    ds["spec"]["template"]["spec"]["containers"][0]["image"] = "kedge/mapper-opcua"
    plan = daemonset_plan(ds, nodes, pods, NOW)
    assert len(plan.delete) == 1 and plan.create == []  # default maxUnavailable 1
    ds["spec"]["updateStrategy"] = {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "50%"},
    }
    plan = daemonset_plan(ds, nodes, pods, NOW)
    assert len(plan.delete) == 2
    gone = [p for p in pods if p["metadata"]["name"] not in plan.delete]
    plan = daemonset_plan(ds, nodes, gone, NOW)  # two nodes without a daemon: none more goes
    assert len(plan.create) == 2 and plan.delete == []
    assert plan.status["numberUnavailable"] == 2 and plan.status["updatedNumberScheduled"] == 0
    fresh = [*gone, *(as_pod(p) for p in plan.create)]
    plan = daemonset_plan(ds, nodes, fresh, NOW)
    assert len(plan.delete) == 2 and plan.status["updatedNumberScheduled"] == 2


def test_an_unavailable_old_pod_is_replaced_without_waiting_for_the_budget() -> None:
    ds = owner("ds")
    nodes = [node("a"), node("b")]
    pods = _running(ds, nodes)
    pods[0]["status"]["conditions"][0]["status"] = "False"
    ds["spec"]["template"]["spec"]["containers"][0]["image"] = "kedge/mapper-opcua"
    plan = daemonset_plan(ds, nodes, pods, NOW)
    assert plan.delete == [pods[0]["metadata"]["name"]]  # already down: costs no budget


def test_on_delete_replaces_nothing_by_itself() -> None:
    ds = owner("ds", updateStrategy={"type": "OnDelete"})
    nodes = [node("a")]
    pods = _running(ds, nodes)
    ds["spec"]["template"]["spec"]["containers"][0]["image"] = "kedge/mapper-opcua"
    assert daemonset_plan(ds, nodes, pods, NOW).delete == []
    plan = daemonset_plan(ds, nodes, [], NOW)  # someone deleted it: the new template comes
    assert plan.create[0]["spec"]["containers"][0]["image"] == "kedge/mapper-opcua"


def test_a_terminating_pod_is_waited_for_and_a_failed_one_replaced() -> None:
    ds = owner("ds")
    pods = _running(ds, [node("a")])
    pods[0]["metadata"]["deletionTimestamp"] = "2027-01-15T08:00:00Z"
    assert daemonset_plan(ds, [node("a")], pods, NOW).create == []
    failed = _running(ds, [node("a")])
    failed[0]["status"]["phase"] = "Failed"
    plan = daemonset_plan(ds, [node("a")], failed, NOW)
    assert len(plan.create) == 1 and plan.delete == [failed[0]["metadata"]["name"]]


def test_daemonset_leaves_nodes_that_stop_matching() -> None:
    ds = owner("ds")
    pods = _running(ds, [node("a"), node("b")])
    plan = daemonset_plan(ds, [node("a"), node("b", role="cloud")], pods, NOW)
    assert plan.delete == [p["metadata"]["name"] for p in pods if p["spec"]["nodeName"] == "b"]
    assert plan.status["numberMisscheduled"] == 1


def test_daemonset_keeps_its_pods_on_a_node_that_lost_the_cloud() -> None:
    """As Kubernetes' DaemonSet controller: daemon pods tolerate not-ready and unreachable
    (NoExecute), so a node cut off from the cloud keeps its mappers."""
    ds = owner("ds")
    pods = _running(ds, [node("a")])
    assert {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
            "effect": "NoExecute"} in pods[0]["spec"]["tolerations"]  # fmt: skip
    cut_off = node("a")
    cut_off["spec"]["taints"] = [
        {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"},
    ]
    plan = daemonset_plan(ds, [cut_off], pods, NOW)
    assert plan.delete == [] and plan.create == []
    tainted = node("a")
    tainted["spec"]["taints"] = [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]
    assert daemonset_plan(ds, [tainted], pods, NOW).delete == []  # NoSchedule evicts nothing
    tainted["spec"]["taints"][0]["effect"] = "NoExecute"
    assert daemonset_plan(ds, [tainted], pods, NOW).delete  # other NoExecute taints still count


def test_history_records_templates_and_an_undo_makes_an_old_one_current() -> None:
    ds = owner("ds", revisionHistoryLimit=1)
    ds["metadata"]["annotations"] = {"kubernetes.io/change-cause": "first"}
    first = history_plan(ds, []).create[0]
    assert first["revision"] == 1 and first["metadata"]["annotations"] == {
        "kubernetes.io/change-cause": "first"}  # fmt: skip
    assert first["data"]["spec"]["template"]["$patch"] == "replace"  # what kubectl undo applies
    stored = [as_stored(first, "r1")]
    assert history_plan(ds, stored).create == []
    ds["spec"]["template"]["spec"]["containers"][0]["image"] = "kedge/mapper-opcua"
    second = history_plan(ds, stored).create[0]
    assert second["revision"] == 2
    stored.append(as_stored(second, "r2"))
    ds["spec"]["template"] = TEMPLATE  # kubectl rollout undo
    undone = history_plan(ds, stored)
    assert undone.create == [] and undone.revise == {first["metadata"]["name"]: 3}
    assert undone.delete == []  # one old revision kept (the limit)
    stored[0]["revision"] = 3
    stored.append(as_stored({**second, "metadata": {**second["metadata"], "name": "m-x"},
                             "revision": 1}, "r3"))  # fmt: skip
    assert history_plan(ds, stored).delete == ["m-x"]  # beyond the limit, oldest first
