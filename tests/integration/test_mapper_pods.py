"""Mappers deployed the Kubernetes way: `kubectl apply` of the shipped DaemonSet -> the standalone
controllers place its pod on the edge node -> edged runs the mapper -> twins flow into
Device.status; an edgecore restarted while the cloud is down runs its pods again."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.apiserver import ApiServerProcess
from tests.cloud import CloudProcess
from tests.support import ROOT, SAMPLES, Mosquitto, Proc, free_port, port_open, wait_for

MAPPER = ROOT / "deploy" / "mappers" / "modbus.yaml"


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[CloudProcess]:
    apiserver = ApiServerProcess(tmp_path / "apiserver").start()
    cloud = CloudProcess(apiserver, tmp_path / "cloudcore", extra=("--workload-controllers",))
    yield cloud.start()
    cloud.stop()
    apiserver.stop()


def _get(cloud: CloudProcess, *what: str) -> dict[str, Any] | None:
    got = cloud.apiserver.kubectl("get", *what, "-o", "json", check=False)
    return dict(json.loads(got.stdout)) if got.returncode == 0 else None


def _mapper_pods(cloud: CloudProcess) -> list[dict[str, Any]]:
    listed = _get(cloud, "pods", "-n", "kedge-system") or {}
    return list(listed.get("items", []))


def _running(cloud: CloudProcess) -> dict[str, Any] | None:
    for pod in _mapper_pods(cloud):
        statuses = pod.get("status", {}).get("containerStatuses") or [{}]
        if "running" in statuses[0].get("state", {}):
            return pod
    return None


def _temperature(cloud: CloudProcess) -> str | None:
    device = _get(cloud, "device", "thermostat-1") or {}
    for twin in device.get("status", {}).get("twins", []):
        if twin["propertyName"] == "temperature":
            return str(twin["reported"]["value"])
    return None


def test_mapper_daemonset_runs_on_the_edge_and_twins_flow(
    tmp_path: Path, standalone: CloudProcess, broker: Mosquitto
) -> None:
    cloud = standalone
    port = free_port()
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
        pod = wait_for(lambda: _running(cloud), timeout=60, what="the mapper pod running")
        assert pod["spec"]["nodeName"] == "edge-node-1"
        assert pod["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
        wait_for(lambda: _temperature(cloud), timeout=30, what="a reported temperature")
        ds = wait_for(lambda: (d := _get(cloud, "ds", "mapper-modbus", "-n", "kedge-system"))
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
    finally:
        edge.stop()
        simulator.stop()
