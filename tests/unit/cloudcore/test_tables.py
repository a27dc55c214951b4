"""kubectl's computed node columns."""

from __future__ import annotations

from typing import Any

import pytest

from cloudcore.apiserver.columns import node_roles, node_status


def _node(ready: str | None, unschedulable: bool = False, **labels: str) -> dict[str, Any]:
    conditions = [] if ready is None else [{"type": "Ready", "status": ready}]
    return {"metadata": {"labels": labels}, "spec": {"unschedulable": unschedulable},
            "status": {"conditions": conditions}}  # fmt: skip


@pytest.mark.parametrize(
    ("node", "status"),
    [
        (_node("True"), "Ready"),
        (_node("Unknown"), "NotReady"),
        (_node("False"), "NotReady"),
        (_node(None), "Unknown"),
        (_node("True", unschedulable=True), "Ready,SchedulingDisabled"),
        ({"status": {"conditions": ["junk"]}}, "Unknown"),
    ],
)
def test_node_status_when_conditions_vary_reads_as_kubectl_does(
    node: dict[str, Any], status: str
) -> None:
    assert node_status(node) == status


def test_node_roles_when_labelled_lists_them_and_none_otherwise() -> None:
    labelled = _node(
        "True", **{"node-role.kubernetes.io/edge": "", "node-role.kubernetes.io/agent": ""}
    )
    assert node_roles(labelled) == "agent,edge"
    assert node_roles(_node("True")) == "<none>"
