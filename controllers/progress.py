"""A Deployment's Available and Progressing conditions, as Kubernetes' deployment controller
writes them and `kubectl rollout status` reads them (ProgressDeadlineExceeded after
`progressDeadlineSeconds`, 600 by default, without progress). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controllers.replicas import count, seconds

Obj = dict[str, Any]
COUNTS = ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")


@dataclass(frozen=True, slots=True)
class Moment:
    now: float  # Unix seconds
    stamp: str  # the same as metav1.Time


def progressed(before: Obj, after: Obj) -> bool:
    """Kubernetes' DeploymentProgressing: more updated, ready or available pods, or fewer old."""

    def of(status: Obj, name: str) -> int:
        return count(status.get(name), 0)

    old_before = of(before, "replicas") - of(before, "updatedReplicas")
    old_after = of(after, "replicas") - of(after, "updatedReplicas")
    return any(of(after, n) > of(before, n) for n in COUNTS[1:]) or old_after < old_before


def _condition(previous: Obj | None, kind: str, status: str, reason: str, message: str,
               at: Moment, touch: bool = False) -> Obj:  # fmt: skip
    same = (previous is not None and (previous.get("status"), previous.get("reason"),
            previous.get("message")) == (status, reason, message))  # fmt: skip
    kept = previous or {}
    return {
        "type": kind, "status": status, "reason": reason, "message": message,
        "lastUpdateTime": kept.get("lastUpdateTime") if same and not touch else at.stamp,
        "lastTransitionTime": kept.get("lastTransitionTime")
        if kept.get("status") == status else at.stamp,
    }  # fmt: skip


def conditions(deployment: Obj, status: Obj, new: str, created: bool, minimum: int,
               at: Moment) -> tuple[list[Obj], float | None]:  # fmt: skip
    """[Available, Progressing], and the seconds until the deadline could pass."""
    spec, before = deployment.get("spec") or {}, deployment.get("status") or {}
    previous = {c.get("type"): c for c in before.get("conditions") or [] if isinstance(c, dict)}
    ok = count(status.get("availableReplicas"), 0) >= minimum
    available = _condition(previous.get("Available"), "Available", "True" if ok else "False",
                           "MinimumReplicasAvailable" if ok else "MinimumReplicasUnavailable",
                           "Deployment has minimum availability." if ok
                           else "Deployment does not have minimum availability.", at)  # fmt: skip
    wanted, last = count(spec.get("replicas")), previous.get("Progressing")
    done = (status.get("updatedReplicas") == wanted == status.get("replicas")
            and count(status.get("availableReplicas"), 0) >= wanted)  # fmt: skip
    recheck = None
    if spec.get("paused"):
        progressing = _condition(last, "Progressing", "Unknown", "DeploymentPaused",
                                 "Deployment is paused", at)  # fmt: skip
    elif done:
        progressing = _condition(
            last,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            f'ReplicaSet "{new}" has successfully progressed.',
            at,
        )
    elif created:
        progressing = _condition(
            last,
            "Progressing",
            "True",
            "NewReplicaSetCreated",
            f'Created new replica set "{new}"',
            at,
        )
    elif last is None or progressed(before, status) or last.get("reason") in (
            "NewReplicaSetAvailable", "DeploymentPaused"):  # fmt: skip
        progressing = _condition(
            last,
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            f'ReplicaSet "{new}" is progressing.',
            at,
            touch=True,
        )
    else:
        progressing, recheck = _deadline(spec, last, new, at)
    return [available, progressing], recheck


def _deadline(spec: Obj, last: Obj, new: str, at: Moment) -> tuple[Obj, float | None]:
    deadline = count(spec.get("progressDeadlineSeconds"), 600)
    since = seconds(last.get("lastUpdateTime")) or at.now
    if last.get("reason") == "ProgressDeadlineExceeded" or since + deadline > at.now:
        left = since + deadline - at.now
        return last, left if left > 0 else None
    return _condition(
        last,
        "Progressing",
        "False",
        "ProgressDeadlineExceeded",
        f'ReplicaSet "{new}" has timed out progressing.',
        at,
    ), None
