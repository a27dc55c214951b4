"""Deployment plans over ReplicaSets (pure): revisions, rolling steps within maxSurge and
maxUnavailable, Recreate, pause, undo, history limit, and the conditions rollout status reads."""

from __future__ import annotations

import copy

from controllers.progress import Moment
from controllers.replicas import HASH_LABEL
from controllers.rollout import REVISION, Rollout, deployment_rollout, scaled
from tests.unit.controllers.workload_objects import Obj, as_stored, owner

AT = Moment(1_800_000_000.0, "2027-01-15T08:00:00Z")


def _settle(deployment: Obj, sets: list[Obj], rollout: Rollout, available: bool = True
            ) -> list[Obj]:  # fmt: skip
    """The ReplicaSets after the plan was applied and their pods came up (or did not)."""
    out = [copy.deepcopy(rs) for rs in sets if rs["metadata"]["name"] not in rollout.delete]
    out += [as_stored(rs, f"uid-{rs['metadata']['name']}") for rs in rollout.create]
    for rs in out:
        patch = rollout.patch.get(rs["metadata"]["name"], {})
        rs["spec"].update(patch.get("spec", {}))
        rs["metadata"].setdefault("annotations", {}).update(
            (patch.get("metadata") or {}).get("annotations", {})
        )
        replicas = rs["spec"]["replicas"]
        rs["status"] = {"replicas": replicas, "readyReplicas": replicas if available else 0,
                        "availableReplicas": replicas if available else 0}  # fmt: skip
    deployment.setdefault("status", {}).update(rollout.status)
    return out


def _replicas(sets: list[Obj]) -> dict[str, int]:
    return {rs["metadata"]["annotations"][REVISION]: rs["spec"]["replicas"] for rs in sets}


def test_a_new_deployment_gets_a_replica_set_with_revision_1() -> None:
    deployment = owner("deploy", replicas=3, selector={"matchLabels": {"app": "m"}})
    rollout = deployment_rollout(deployment, [], [], AT)
    [rs] = rollout.create
    hash_ = rs["metadata"]["labels"][HASH_LABEL]
    assert rs["metadata"]["name"] == f"m-{hash_}" and rs["spec"]["replicas"] == 3
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "m", HASH_LABEL: hash_}
    assert rs["spec"]["template"]["metadata"]["labels"] == {"app": "m", HASH_LABEL: hash_}
    assert rs["metadata"]["annotations"][REVISION] == "1" and rollout.revision == "1"
    assert rs["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    conditions = {c["type"]: c["reason"] for c in rollout.status["conditions"]}
    assert conditions == {"Available": "MinimumReplicasUnavailable",
                          "Progressing": "NewReplicaSetCreated"}  # fmt: skip
    sets = _settle(deployment, [], rollout)
    done = deployment_rollout(deployment, sets, [], AT)
    assert done.create == [] and done.patch == {} and done.status["updatedReplicas"] == 3
    assert done.status["conditions"][1]["reason"] == "NewReplicaSetAvailable"


def test_a_rolling_update_stays_within_surge_and_unavailability() -> None:
    deployment = owner("deploy", replicas=4)  # 25 %: surge 1, unavailable 1
    sets = _settle(deployment, [], deployment_rollout(deployment, [], [], AT))
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = "kedge/python"
    step = deployment_rollout(deployment, sets, [], AT)
    assert step.create[0]["spec"]["replicas"] == 1  # 4 + 1 surge - 4 running
    assert step.create[0]["metadata"]["annotations"][REVISION] == "2"
    assert step.patch == {sets[0]["metadata"]["name"]: {"spec": {"replicas": 3}}}  # 1 may go
    sets = _settle(deployment, sets, step, available=False)
    for rs in sets:
        if rs["metadata"]["annotations"][REVISION] == "1":
            rs["status"]["availableReplicas"] = rs["status"]["readyReplicas"] = 3
    surge = deployment_rollout(deployment, sets, [], AT)
    new_set = step.create[0]["metadata"]["name"]
    assert surge.patch == {new_set: {"spec": {"replicas": 2}}}  # 3 old + 2 new = 4 + 1 surge
    next(rs for rs in sets if rs["metadata"]["name"] == new_set)["spec"]["replicas"] = 2
    assert deployment_rollout(deployment, sets, [], AT).patch == {}  # none available: wait
    for _ in range(6):
        sets = _settle(deployment, sets, deployment_rollout(deployment, sets, [], AT))
    assert _replicas(sets) == {"1": 0, "2": 4}
    assert deployment["status"]["updatedReplicas"] == 4


def test_recreate_empties_old_sets_before_the_new_one_starts() -> None:
    deployment = owner("deploy", replicas=2, strategy={"type": "Recreate"})
    sets = _settle(deployment, [], deployment_rollout(deployment, [], [], AT))
    old_pod = {
        "metadata": {
            "name": "p",
            "ownerReferences": [{"uid": sets[0]["metadata"]["uid"], "controller": True}],
        },
        "status": {"phase": "Running"},
    }
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = "kedge/python"
    step = deployment_rollout(deployment, sets, [old_pod], AT)
    assert step.create[0]["spec"]["replicas"] == 0
    assert step.patch[sets[0]["metadata"]["name"]] == {"spec": {"replicas": 0}}
    sets = _settle(deployment, sets, step)
    new_set = step.create[0]["metadata"]["name"]
    assert deployment_rollout(deployment, sets, [old_pod], AT).patch == {}  # old pod still there
    assert deployment_rollout(deployment, sets, [], AT).patch == {
        new_set: {"spec": {"replicas": 2}}
    }


def test_undo_makes_the_old_set_current_with_the_next_revision() -> None:
    deployment = owner("deploy", replicas=1)
    first_template = copy.deepcopy(deployment["spec"]["template"])
    sets = _settle(deployment, [], deployment_rollout(deployment, [], [], AT))
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = "kedge/python"
    for _ in range(4):
        sets = _settle(deployment, sets, deployment_rollout(deployment, sets, [], AT))
    assert _replicas(sets) == {"1": 0, "2": 1}
    deployment["spec"]["template"] = first_template
    undo = deployment_rollout(deployment, sets, [], AT)
    assert undo.create == [] and undo.revision == "3"
    first = next(rs for rs in sets if rs["metadata"]["annotations"][REVISION] == "1")
    assert undo.patch[first["metadata"]["name"]]["metadata"]["annotations"][REVISION] == "3"


def test_paused_scales_but_does_not_roll_and_history_is_limited() -> None:
    deployment = owner("deploy", replicas=1, revisionHistoryLimit=1)
    sets = _settle(deployment, [], deployment_rollout(deployment, [], [], AT))
    for image in ("a", "b", "c"):
        deployment["spec"]["template"]["spec"]["containers"][0]["image"] = image
        for _ in range(4):
            rollout = deployment_rollout(deployment, sets, [], AT)
            sets = _settle(deployment, sets, rollout)
    assert sorted(_replicas(sets)) == ["3", "4"]  # revisions 1 and 2 deleted
    deployment["spec"].update(paused=True, replicas=3)
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = "d"
    paused = deployment_rollout(deployment, sets, [], AT)
    assert paused.create == [] and list(paused.patch.values()) == [{"spec": {"replicas": 3}}]
    assert paused.status["conditions"][1]["reason"] == "DeploymentPaused"


def test_no_progress_past_the_deadline_is_reported() -> None:
    deployment = owner("deploy", replicas=1, progressDeadlineSeconds=60)
    rollout = deployment_rollout(deployment, [], [], AT)
    sets = _settle(deployment, [], rollout, available=False)
    later = Moment(AT.now + 30, "2027-01-15T08:00:30Z")
    waiting = deployment_rollout(deployment, sets, [], later)  # a pod made: progress
    assert waiting.status["conditions"][1]["reason"] == "ReplicaSetUpdated"
    deployment["status"] = waiting.status
    quiet = deployment_rollout(deployment, sets, [], Moment(AT.now + 40, "2027-01-15T08:00:40Z"))
    assert quiet.status == waiting.status and quiet.recheck == 50  # 60 s after the last progress
    late = deployment_rollout(deployment, sets, [], Moment(AT.now + 91, "2027-01-15T08:01:31Z"))
    progressing = late.status["conditions"][1]
    assert (progressing["status"], progressing["reason"]) == ("False", "ProgressDeadlineExceeded")


def test_int_or_percent() -> None:
    assert scaled("25%", 10, True) == 3 and scaled("25%", 10, False) == 2
    assert scaled(2, 10, True) == 2 and scaled("bad", 10, True) == 0
