"""Objects for the workload controllers' pure plans: owners, nodes, pods as a kubelet shows them."""

from __future__ import annotations

import copy
from typing import Any

Obj = dict[str, Any]
TEMPLATE = {"metadata": {"labels": {"app": "m"}},
            "spec": {"nodeSelector": {"role": "edge"},
                     "containers": [{"name": "m", "image": "kedge/mapper-modbus"}]}}  # fmt: skip


def owner(kind: str, **spec: Any) -> Obj:
    return {"metadata": {"name": "m", "namespace": "ns", "uid": f"{kind}-uid", "generation": 2},
            "spec": {"template": copy.deepcopy(TEMPLATE), **spec}}  # fmt: skip


def node(name: str, role: str = "edge") -> Obj:
    return {"metadata": {"name": name, "labels": {"role": role}}, "spec": {}, "status": {}}


def as_pod(created: Obj, ready: bool = True, phase: str = "Running", since: str = "") -> Obj:
    """A created pod as it looks once its node runs it."""
    pod = copy.deepcopy(created)
    condition = {"type": "Ready", "status": "True" if ready else "False"}
    if since:
        condition["lastTransitionTime"] = since
    pod["status"] = {"phase": phase, "conditions": [condition]}
    return pod


def as_stored(created: Obj, uid: str) -> Obj:
    """An object the controller asked for, as the API server stores it."""
    stored = copy.deepcopy(created)
    stored["metadata"]["uid"] = uid
    return stored
