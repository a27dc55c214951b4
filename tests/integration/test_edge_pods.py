"""Pods on an edge node through the ordinary path: kubectl -> API server -> cloudcore -> edged,
status back in `kubectl get pods` (real processes, real kubectl)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import psutil

from harness.cloud import CloudProcess
from harness.support import Mosquitto, wait_for

SCRIPT = "import os,time;print('hello from', os.environ['GREETING'], flush=True); time.sleep(600)"
GREETING = {"configMapKeyRef": {"name": "greeting", "key": "who"}}


def pod_manifest(name: str, **spec: Any) -> dict[str, Any]:
    container = {"name": "main", "image": "kedge/python:3", "args": ["-c", SCRIPT],
                 "env": [{"name": "GREETING", "valueFrom": GREETING}]}  # fmt: skip
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": "edge-node-1", "containers": [container],
                 "terminationGracePeriodSeconds": 5, **spec},
    }  # fmt: skip


def _apply(cloud: CloudProcess, *objects: dict[str, Any]) -> None:
    for obj in objects:
        cloud.apiserver.kubectl("apply", "-f", "-", stdin=json.dumps(obj))


def _main(pod: dict[str, Any] | None) -> dict[str, Any]:
    statuses = (pod or {}).get("status", {}).get("containerStatuses") or [{}]
    return dict(statuses[0])


def _pid(pod: dict[str, Any] | None) -> int:
    return int(_main(pod)["containerID"].removeprefix("process://"))


def _stopped(pid: int) -> bool:
    """Gone or a zombie (it may go between the two looks)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_pod_runs_restarts_and_stops_on_the_edge(
    tmp_path: Path, cloud: CloudProcess, broker: Mosquitto
) -> None:
    edge = cloud.edge(tmp_path / "edge", broker.url)
    edge.extra += ["--heartbeat", "0.5", "--pod-backoff", "0.5"]
    edge.start()
    try:
        configmap = {"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": "greeting", "namespace": "default"},
                     "data": {"who": "the cloud"}}  # fmt: skip
        wait_for(lambda: cloud.apiserver.kubectl("get", "node", "edge-node-1", check=False)
                 .returncode == 0, timeout=30, what="the edge node registered")  # fmt: skip
        _apply(cloud, configmap, pod_manifest("hello"))
        wait_for(lambda: _main(cloud.get("pod", "hello")).get("state", {}).get("running"),
                 timeout=30, what="the pod running on the edge")  # fmt: skip
        pod = cloud.get("pod", "hello")
        assert pod is not None and pod["status"]["phase"] == "Running"
        ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
        assert ready["Ready"] == "True"
        first = _pid(pod)
        log = next((tmp_path / "edge" / "pods").glob("*/logs/main.log"))
        wait_for(lambda: "hello from the cloud" in log.read_text(), timeout=10, what="pod log")

        logs = cloud.apiserver.kubectl("logs", "hello").stdout  # fetched from the edge
        assert "hello from the cloud" in logs
        assert cloud.apiserver.kubectl("logs", "hello", "--tail=1").stdout.strip() == (
            "hello from the cloud"
        )
        missing = cloud.apiserver.kubectl("logs", "hello", "-c", "nope", check=False)
        assert missing.returncode != 0 and "not valid" in missing.stderr

        os.kill(first, signal.SIGKILL)  # the process dies: restarted, and the count shows
        wait_for(lambda: _main(cloud.get("pod", "hello")).get("restartCount", 0) >= 1
                 and _main(cloud.get("pod", "hello")).get("state", {}).get("running"),
                 timeout=30, what="the container restarted")  # fmt: skip
        pod = cloud.get("pod", "hello")
        assert _main(pod)["lastState"]["terminated"]["exitCode"] == 137
        table = cloud.apiserver.kubectl("get", "pods").stdout
        assert "hello" in table and "Running" in table, table
        second = _pid(pod)
        assert second != first
        previous = cloud.apiserver.kubectl("logs", "hello", "--previous").stdout
        assert "hello from the cloud" in previous  # the killed run's log

        cloud.apiserver.kubectl("delete", "pod", "hello", "--wait=false")
        wait_for(lambda: _stopped(second), timeout=30, what="the process stopped")
    finally:
        edge.stop()
