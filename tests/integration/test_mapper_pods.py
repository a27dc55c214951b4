"""Mappers deployed the Kubernetes way: `kubectl apply` of the shipped DaemonSet -> the standalone
controllers place its pod on the edge node -> edged runs the mapper -> twins flow into
Device.status; an edgecore restarted while the cloud is down runs its pods again."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from harness.cloud import CloudProcess, running_cloud
from harness.support import (
    ROOT,
    SAMPLES,
    EdgeProcess,
    Mosquitto,
    Proc,
    free_port,
    port_open,
    wait_for,
)

MAPPER = ROOT / "deploy" / "mappers" / "modbus.yaml"


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[CloudProcess]:
    with running_cloud(tmp_path, "--workload-controllers") as cloud:
        yield cloud


def _mapper_pods(cloud: CloudProcess) -> list[dict[str, Any]]:
    listed = cloud.get("pods", "-n", "kedge-system") or {}
    return list(listed.get("items", []))


def _running(cloud: CloudProcess) -> dict[str, Any] | None:
    for pod in _mapper_pods(cloud):
        statuses = pod.get("status", {}).get("containerStatuses") or [{}]
        if "running" in statuses[0].get("state", {}):
            return pod
    return None


def _temperature(cloud: CloudProcess) -> str | None:
    for twin in cloud.reported("thermostat-1").get("twins", []):
        if twin["propertyName"] == "temperature":
            return str(twin["reported"]["value"])
    return None


@pytest.fixture
def deployed(
    tmp_path: Path, standalone: CloudProcess, broker: Mosquitto
) -> Iterator[tuple[CloudProcess, EdgeProcess]]:
    """The Modbus sample and the shipped mapper DaemonSet applied, a simulator and an edge
    node (heartbeats every 0.5 s) running; all stopped afterwards."""
    cloud, port = standalone, free_port()
    simulator = Proc([sys.executable, "-m", "simulators.modbus", "--port", str(port)],
                     tmp_path / "simulator.log").start()  # fmt: skip
    edge = cloud.edge(tmp_path / "edge", broker.url)
    edge.extra += ["--heartbeat", "0.5"]
    try:
        wait_for(lambda: port_open(port), what="Modbus simulator")
        edge.start()
        manifest = tmp_path / "modbus.yaml"
        manifest.write_text((SAMPLES / "modbus.yaml").read_text().replace("5020", str(port)))
        cloud.apiserver.kubectl("apply", "-f", str(manifest))
        cloud.apiserver.kubectl("apply", "-f", str(MAPPER))
        yield cloud, edge
    finally:
        edge.stop()
        simulator.stop()


def test_mapper_daemonset_runs_on_the_edge_and_twins_flow(
    deployed: tuple[CloudProcess, EdgeProcess],
) -> None:
    cloud, edge = deployed
    pod = wait_for(lambda: _running(cloud), timeout=60, what="the mapper pod running")
    assert pod["spec"]["nodeName"] == "edge-node-1"
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
    wait_for(lambda: _temperature(cloud), timeout=30, what="a reported temperature")
    ds = wait_for(lambda: (d := cloud.get("ds", "mapper-modbus", "-n", "kedge-system"))
                  and d.get("status", {}).get("numberReady") == 1 and d,
                  timeout=30, what="the DaemonSet ready")  # fmt: skip
    assert ds["status"]["desiredNumberScheduled"] == 1

    # the cloud goes away; the edge restarts offline and runs its mapper pod again
    cloud.stop()
    edge.stop()
    edge.start()
    log = edge.state_dir / "edgecore.log"
    wait_for(lambda: log.read_text().count('"container started"') >= 2, timeout=30,
             what="the mapper started again from the local store")  # fmt: skip
    restarted = time.time() * 1000

    def fresh() -> bool:
        reported = edge.twin("default/thermostat-1", "temperature")["reported"] or {}
        return int(reported.get("timestamp", 0)) > restarted

    wait_for(fresh, timeout=30, what="new readings from the restarted mapper pod")


def _apply(cloud: CloudProcess, obj: dict[str, Any]) -> None:
    cloud.apiserver.kubectl("apply", "-f", "-", stdin=json.dumps(obj))


def _sleeper(name: str, **spec: Any) -> dict[str, Any]:
    container = {
        "name": "main",
        "image": "kedge/python",
        "args": ["-c", "import time; time.sleep(600)"],
    }
    container.update(spec.pop("container", {}))
    spec = {"containers": [container], "terminationGracePeriodSeconds": 5, **spec}
    meta = {"name": name, "namespace": "default"}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def _scheduled(cloud: CloudProcess, name: str) -> dict[str, Any]:
    pod = cloud.get("pod", name) or {}
    conditions = pod.get("status", {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == "PodScheduled"), {})


def test_scheduler_and_deployments_place_pods_on_edge_nodes(
    tmp_path: Path, standalone: CloudProcess, broker: Mosquitto
) -> None:
    cloud = standalone
    edge = cloud.edge(tmp_path / "edge", broker.url)
    edge.extra += ["--heartbeat", "0.5", "--labels", "site=lab"]
    edge.start()
    try:
        wait_for(lambda: cloud.get("node", "edge-node-1"), timeout=30, what="the node")
        template = _sleeper("x", nodeSelector={"site": "lab"})
        labels = {"app": "sleepers"}
        _apply(cloud, {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "sleepers", "namespace": "default"},
            "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": template["spec"]}},
        })  # fmt: skip

        def ready_replicas() -> int:
            return int(((cloud.get("deployment", "sleepers") or {}).get("status") or {})
                       .get("readyReplicas") or 0)  # fmt: skip

        wait_for(lambda: ready_replicas() == 2, timeout=60, what="2 replicas ready")
        pods = (cloud.get("pods", "-l", "app=sleepers") or {})["items"]
        assert {p["spec"]["nodeName"] for p in pods} == {"edge-node-1"}

        _apply(cloud, _sleeper("elsewhere", nodeSelector={"site": "plant"}))
        _apply(cloud, _sleeper("greedy", container={"resources": {"requests": {"cpu": "512"}}}))
        wait_for(lambda: _scheduled(cloud, "elsewhere").get("status") == "False", timeout=30,
                 what="an unschedulable pod explained")  # fmt: skip
        assert _scheduled(cloud, "elsewhere")["message"] == (
            "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."
        )
        wait_for(lambda: "Insufficient cpu" in _scheduled(cloud, "greedy").get("message", ""),
                 timeout=30, what="an over-large request explained")  # fmt: skip

        _apply(cloud, _sleeper("nginx", nodeName="edge-node-1",
                               container={"image": "nginx:1.25", "args": []}))  # fmt: skip
        wait_for(lambda: "ErrImagePull" in cloud.apiserver.kubectl("get", "pod", "nginx").stdout,
                 timeout=30, what="ErrImagePull in kubectl get pods")  # fmt: skip

        cloud.apiserver.kubectl("patch", "deployment", "sleepers", "--type=merge", "-p",
                                '{"spec": {"replicas": 1}}')  # fmt: skip
        wait_for(lambda: len((cloud.get("pods", "-l", "app=sleepers") or {})["items"]) == 1,
                 timeout=30, what="scaled down to 1")  # fmt: skip
    finally:
        edge.stop()


def _state(cloud: CloudProcess) -> str:
    return str(cloud.reported("thermostat-1").get("state"))


def _condition(cloud: CloudProcess, kind: str) -> dict[str, Any]:
    status = (cloud.get("device", "thermostat-1") or {}).get("status") or {}
    return next((c for c in status.get("conditions") or [] if c["type"] == kind), {})


def _mapper_pid(edge: EdgeProcess) -> int | None:
    assert edge.process is not None
    for child in psutil.Process(edge.process.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "mappers.modbus" in " ".join(child.cmdline()) and child.status() != "zombie":
                return child.pid
    return None


def _kill_mapper(edge: EdgeProcess) -> None:
    pid = wait_for(lambda: _mapper_pid(edge), timeout=30, what="the mapper process")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: _mapper_pid(edge) != pid, what="the mapper process gone")


def _device_state(edge: EdgeProcess) -> str:
    return str(edge.get("/v1/devices/default/thermostat-1").json()["state"])


def test_a_killed_mapper_pod_is_noticed_and_its_devices_recover(
    deployed: tuple[CloudProcess, EdgeProcess],
) -> None:
    cloud, edge = deployed
    wait_for(lambda: _state(cloud) == "online", timeout=60, what="the device online")
    wait_for(lambda: _condition(cloud, "MapperAvailable").get("status") == "True",
             timeout=30, what="MapperAvailable")  # fmt: skip
    # edged restarts a container that dies at once the first time, after --pod-backoff
    # (10 s) the second: kill it twice, and the second outage lasts long enough to see
    _kill_mapper(edge)
    wait_for(lambda: _device_state(edge) == "online" and _mapper_pid(edge), timeout=30,
             what="the mapper restarted at once")  # fmt: skip
    killed = time.monotonic()
    _kill_mapper(edge)  # kill -9: no goodbye, only the broker's last will tells the edge
    wait_for(lambda: _device_state(edge) == "unknown", timeout=15, what="unknown at the edge")
    stopped = wait_for(lambda: _state(cloud) == "unknown"
                       and (c := _condition(cloud, "MapperAvailable")).get("reason")
                       == "MapperStopped" and c, timeout=15,
                       what="unknown and MapperStopped in the cloud")  # fmt: skip
    assert time.monotonic() - killed < 15
    # the condition as seen then: edged restarts the mapper after its backoff, which may
    # already have happened by now
    assert "the modbus mapper on edge-node-1 stopped" in stopped["message"]
    wait_for(
        lambda: any(
            e["reason"] == "MapperStopped" for e in (cloud.get("events") or {}).get("items", [])
        ),
        timeout=10,
        what="the MapperStopped Event",
    )  # the Event follows the condition
    # edged restarts the pod; the new mapper registers and the device is online again
    wait_for(lambda: _device_state(edge) == "online", timeout=30, what="online at the edge")
    wait_for(lambda: _state(cloud) == "online"
             and _condition(cloud, "MapperAvailable").get("status") == "True",
             timeout=30, what="online and MapperAvailable again in the cloud")  # fmt: skip
