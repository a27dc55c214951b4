"""kubectl's computed columns of the built-in types (what a JSONPath cannot express). Pure."""

from __future__ import annotations

from typing import Any


def node_status(node: dict[str, Any]) -> str:
    """kubectl's STATUS for a node: Ready, NotReady (False or Unknown), Unknown when never
    reported; `,SchedulingDisabled` when cordoned."""
    conditions = (node.get("status") or {}).get("conditions") or []
    ready = next((c for c in conditions if isinstance(c, dict) and c.get("type") == "Ready"), None)
    text = "Unknown" if ready is None else "Ready" if ready.get("status") == "True" else "NotReady"
    return text + (",SchedulingDisabled" if (node.get("spec") or {}).get("unschedulable") else "")


def node_roles(node: dict[str, Any]) -> str:
    labels = (node.get("metadata") or {}).get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))
    return ",".join(r for r in roles if r) or "<none>"


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return [c for c in statuses if isinstance(c, dict)]


def pod_ready(pod: dict[str, Any]) -> str:
    total = len((pod.get("spec") or {}).get("containers") or [])
    return f"{sum(1 for c in _containers(pod) if c.get('ready'))}/{total}"


def pod_status(pod: dict[str, Any]) -> str:
    """kubectl's STATUS: a waiting or terminated container's reason (CrashLoopBackOff,
    ErrImagePull, ...) over the phase; Terminating while being deleted."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return "Terminating"
    reason = str((pod.get("status") or {}).get("phase") or "Pending")
    for container in _containers(pod):
        state = container.get("state") or {}
        waiting, ended = state.get("waiting") or {}, state.get("terminated") or {}
        if waiting.get("reason") and waiting["reason"] != "ContainerCreating":
            reason = str(waiting["reason"])
        elif ended.get("reason"):
            reason = str(ended["reason"])
    return reason


def pod_restarts(pod: dict[str, Any]) -> int:
    return sum(int(c.get("restartCount") or 0) for c in _containers(pod))


def deployment_ready(deployment: dict[str, Any]) -> str:
    """READY as kubectl shows it: ready/desired."""
    status, spec = deployment.get("status") or {}, deployment.get("spec") or {}
    return f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}"
