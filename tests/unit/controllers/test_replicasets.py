"""ReplicaSet plans (pure): pods from the template, deterministic names, Kubernetes' order for
scale-down, readiness and minReadySeconds."""

from __future__ import annotations

from controllers.replicas import replicaset_plan, seconds
from tests.unit.controllers.workload_objects import as_pod, owner

NOW = 1_800_000_000.0


def test_replicaset_creates_and_a_repeated_pass_names_the_same_pods() -> None:
    rs = owner("rs", replicas=3)
    plan = replicaset_plan(rs, [], NOW)
    names = [p["metadata"]["name"] for p in plan.create]
    assert len(set(names)) == 3 and all(n.startswith("m-") for n in names)
    assert [p["metadata"]["name"] for p in replicaset_plan(rs, [], NOW).create] == names
    assert plan.create[0]["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
    assert plan.create[0]["metadata"]["labels"] == {"app": "m"}  # the template's, as given
    pods = [as_pod(p) for p in plan.create]
    again = replicaset_plan(rs, pods, NOW)
    assert again.create == [] and again.delete == []
    assert again.status == {"replicas": 3, "fullyLabeledReplicas": 3, "readyReplicas": 3,
                            "availableReplicas": 3, "observedGeneration": 2}  # fmt: skip


def test_scale_down_removes_unscheduled_then_not_ready_pods_first() -> None:
    rs = owner("rs", replicas=3)
    pods = [as_pod(p) for p in replicaset_plan(rs, [], NOW).create]
    for pod in pods[1:]:
        pod["spec"]["nodeName"] = "a"
    pods[2]["status"]["conditions"][0]["status"] = "False"
    rs["spec"]["replicas"] = 1
    plan = replicaset_plan(rs, pods, NOW)
    assert plan.delete == [pods[0]["metadata"]["name"], pods[2]["metadata"]["name"]]
    assert replicaset_plan(rs, pods, NOW).delete == plan.delete  # the same on every pass


def test_a_finished_pod_is_replaced_and_a_terminating_one_not_counted() -> None:
    rs = owner("rs", replicas=2)
    pods = [as_pod(p) for p in replicaset_plan(rs, [], NOW).create]
    pods[0]["status"]["phase"] = "Failed"
    pods[1]["metadata"]["deletionTimestamp"] = "2027-01-15T08:00:00Z"
    plan = replicaset_plan(rs, pods, NOW)
    assert plan.delete == [pods[0]["metadata"]["name"]] and len(plan.create) == 2
    assert not {p["metadata"]["name"] for p in plan.create} & {p["metadata"]["name"] for p in pods}


def test_min_ready_seconds_delays_availability_and_asks_for_a_recheck() -> None:
    rs = owner("rs", replicas=1, minReadySeconds=30)
    since = "2027-01-15T08:00:00Z"
    pod = as_pod(replicaset_plan(rs, [], NOW).create[0], since=since)
    at = (seconds(since) or 0) + 10  # ready for 10 s
    plan = replicaset_plan(rs, [pod], at)
    assert plan.status["readyReplicas"] == 1 and plan.status["availableReplicas"] == 0
    assert plan.recheck == 20
    assert replicaset_plan(rs, [pod], at + 20).status["availableReplicas"] == 1
