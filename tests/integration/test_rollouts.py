"""Deployments and DaemonSets as Kubernetes runs them, driven with the real kubectl against the
standalone control plane and a real edge node: scale, rollout status/restart/history/undo/pause/
resume, ReplicaSets with revisions, DaemonSet history."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.cloud import CloudProcess, running_cloud
from harness.support import EdgeProcess, Mosquitto, wait_for


@pytest.fixture
def edge_node(tmp_path: Path, broker: Mosquitto) -> Iterator[tuple[CloudProcess, EdgeProcess]]:
    with running_cloud(tmp_path / "cloud", "--workload-controllers") as cloud:
        edge = cloud.edge(tmp_path / "edge", broker.url)
        edge.extra += ["--heartbeat", "0.5"]
        edge.start()
        try:
            wait_for(lambda: cloud.get("node", "edge-node-1"), timeout=30, what="the node")
            yield cloud, edge
        finally:
            edge.stop()


def _kubectl(cloud: CloudProcess, *args: str) -> str:
    return cloud.apiserver.kubectl(*args).stdout


def _running_pods(cloud: CloudProcess, selector: str) -> list[dict[str, Any]]:
    pods = (cloud.get("pods", "-l", selector) or {}).get("items") or []
    return [p for p in pods if p.get("status", {}).get("phase") == "Running"
            and not p["metadata"].get("deletionTimestamp")]  # fmt: skip


def _argv(cloud: CloudProcess, selector: str) -> set[str]:
    """What the running pods run."""
    containers = [p["spec"]["containers"][0] for p in _running_pods(cloud, selector)]
    return {" ".join(c.get("command", []) + c.get("args", [])) for c in containers}


def test_deployment_scale_restart_history_undo(
    edge_node: tuple[CloudProcess, EdgeProcess],
) -> None:
    cloud, _ = edge_node
    _kubectl(cloud, "create", "deployment", "web", "--image=kedge/host", "--replicas=1",
             "--", "sleep", "600")  # fmt: skip
    status = _kubectl(cloud, "rollout", "status", "deployment/web", "--timeout=60s")
    assert 'deployment "web" successfully rolled out' in status

    _kubectl(cloud, "scale", "deployment", "web", "--replicas=3")
    _kubectl(cloud, "rollout", "status", "deployment/web", "--timeout=60s")
    pods = _running_pods(cloud, "app=web")
    assert len(pods) == 3 and {p["spec"]["nodeName"] for p in pods} == {"edge-node-1"}
    [rs] = (cloud.get("rs", "-l", "app=web") or {})["items"]
    assert pods[0]["metadata"]["ownerReferences"][0] == {
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs["metadata"]["name"],
        "uid": rs["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}  # fmt: skip
    assert json.loads(_kubectl(cloud, "get", "--raw", "/apis/apps/v1/namespaces/default/"
                               "deployments/web/scale"))["status"]["replicas"] == 3  # fmt: skip

    _kubectl(cloud, "patch", "deployment", "web", "-p", json.dumps({"spec": {"template": {
        "spec": {"containers": [{"name": "host", "args": ["599"]}]}}}}))  # fmt: skip
    _kubectl(cloud, "rollout", "status", "deployment/web", "--timeout=90s")
    assert _argv(cloud, "app=web") == {"sleep 600 599"}
    history = _kubectl(cloud, "rollout", "history", "deployment/web")
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]

    _kubectl(cloud, "rollout", "undo", "deployment/web")
    _kubectl(cloud, "rollout", "status", "deployment/web", "--timeout=90s")
    wait_for(lambda: _argv(cloud, "app=web") == {"sleep 600"} and len(_running_pods(
        cloud, "app=web")) == 3, timeout=30, what="the first template back")  # fmt: skip
    deployment = cloud.get("deployment", "web") or {}
    assert deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"

    _kubectl(cloud, "rollout", "restart", "deployment/web")
    _kubectl(cloud, "rollout", "status", "deployment/web", "--timeout=90s")
    sets = (cloud.get("rs", "-l", "app=web") or {})["items"]
    assert sorted(int(s["metadata"]["annotations"]["deployment.kubernetes.io/revision"])
                  for s in sets) == [2, 3, 4]  # fmt: skip
    _kubectl(cloud, "rollout", "pause", "deployment/web")
    _kubectl(cloud, "scale", "deployment", "web", "--replicas=1")
    wait_for(lambda: len(_running_pods(cloud, "app=web")) == 1, timeout=30,
             what="a paused deployment still scales")  # fmt: skip
    _kubectl(cloud, "rollout", "resume", "deployment/web")
    conditions = {c["type"]: c for c in (cloud.get("deployment", "web") or {})["status"][
        "conditions"]}  # fmt: skip
    assert conditions["Available"]["status"] == "True"


def test_daemonset_rollout_history_and_undo(edge_node: tuple[CloudProcess, EdgeProcess]) -> None:
    cloud, _ = edge_node
    labels = {"app": "daemon"}
    ds = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "daemon", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {"name": "main", "image": "kedge/host", "command": ["sleep", "600"]}
                    ]
                },
            },
        },
    }
    cloud.apiserver.kubectl("apply", "-f", "-", stdin=json.dumps(ds))  # fmt: skip
    stored = cloud.get("ds", "daemon") or {}
    assert stored["spec"]["updateStrategy"]["type"] == "RollingUpdate"  # defaulted
    _kubectl(cloud, "rollout", "status", "ds/daemon", "--timeout=60s")
    _kubectl(cloud, "rollout", "restart", "ds/daemon")
    _kubectl(cloud, "rollout", "status", "ds/daemon", "--timeout=90s")
    history = _kubectl(cloud, "rollout", "history", "ds/daemon")
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]
    restarted = _running_pods(cloud, "app=daemon")
    assert [p["metadata"]["annotations"].get("kubectl.kubernetes.io/restartedAt") is not None
            for p in restarted] == [True]  # fmt: skip
    _kubectl(cloud, "rollout", "undo", "ds/daemon")
    _kubectl(cloud, "rollout", "status", "ds/daemon", "--timeout=90s")
    template = (cloud.get("ds", "daemon") or {})["spec"]["template"]
    assert "kubectl.kubernetes.io/restartedAt" not in (template["metadata"].get(
        "annotations") or {})  # fmt: skip
    wait_for(lambda: [p["metadata"].get("annotations", {}).get("kubectl.kubernetes.io/"
                                                                 "restartedAt")
                      for p in _running_pods(cloud, "app=daemon")] == [None],
             timeout=30, what="the first template's pod back")  # fmt: skip
