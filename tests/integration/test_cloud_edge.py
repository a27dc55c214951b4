"""Cloud and edge joined: kubectl -> API server -> cloudcore (DeviceController, CloudHub) ->
edgecore (EdgeHub, MetaManager, twins), all real processes over wss with mutual TLS."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cloudcore.pki import ensure_certificates, issue_client_certificate
from tests.apiserver import ApiServerProcess
from tests.support import (
    ROOT,
    SAMPLES,
    EdgeProcess,
    Mosquitto,
    MqttProbe,
    free_port,
    port_open,
    wait_for,
)

DEV = "default/thermostat-1"


@dataclass
class Cloud:
    apiserver: ApiServerProcess
    process: subprocess.Popen[bytes]
    state: Path
    port: int

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(20)


def _cloudcore(apiserver: ApiServerProcess, state: Path, port: int) -> subprocess.Popen[bytes]:
    state.mkdir(parents=True, exist_ok=True)
    with (state / "cloudcore.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cloudcore", "--kubeconfig", str(apiserver.kubeconfig),
             "--state-dir", str(state), "--port", str(port)],
            stdout=log, stderr=log, cwd=ROOT,
        )  # fmt: skip
    wait_for(lambda: port_open(port), timeout=30, what="CloudHub")
    return process


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Cloud]:
    apiserver = ApiServerProcess(tmp_path / "apiserver").start()
    state, port = tmp_path / "cloudcore", free_port()
    ensure_certificates(state / "pki", ("127.0.0.1", "localhost"))
    made = Cloud(apiserver, _cloudcore(apiserver, state, port), state, port)
    yield made
    made.stop()
    apiserver.stop()


def _edge(tmp_path: Path, cloud: Cloud, broker: Mosquitto) -> EdgeProcess:
    certs = tmp_path / "edge-certs"
    certs.mkdir(exist_ok=True)
    crt, key = issue_client_certificate(cloud.state / "pki", "system:node:edge-node-1")
    (certs / "node.crt").write_bytes(crt)
    (certs / "node.key").write_bytes(key)
    (certs / "ca.crt").write_bytes((cloud.state / "pki" / "ca.crt").read_bytes())
    extra = ["--cloud", f"wss://127.0.0.1:{cloud.port}", "--cloud-certs", str(certs)]
    return EdgeProcess(tmp_path / "edge", mqtt_url=broker.url, extra=extra)


def test_kubectl_declared_devices_reach_the_edge_and_follow_changes(
    tmp_path: Path, cloud: Cloud, broker: Mosquitto
) -> None:
    edge = _edge(tmp_path, cloud, broker).start()
    try:
        cloud.apiserver.kubectl("apply", "-f", str(SAMPLES / "modbus.yaml"))
        wait_for(lambda: edge.get(f"/v1/devices/{DEV}").status_code == 200, timeout=30,
                 what="device at the edge")  # fmt: skip
        assert edge.twin(DEV, "setpoint")["desired"]["value"] == "21"
        patch = {"spec": {"properties": [{"name": "setpoint", "desired": {"value": "24"}}]}}
        cloud.apiserver.kubectl("patch", "device", "thermostat-1", "--type", "merge",
                                "-p", json.dumps(patch))  # fmt: skip
        wait_for(lambda: (edge.twin(DEV, "setpoint")["desired"] or {}).get("value") == "24",
                 timeout=30, what="desired from kubectl at the edge")  # fmt: skip
        cloud.apiserver.kubectl("patch", "device", "thermostat-1", "--type", "merge",
                                "-p", '{"spec":{"nodeName":"elsewhere"}}')  # fmt: skip
        wait_for(lambda: edge.get(f"/v1/devices/{DEV}").status_code == 404, timeout=30,
                 what="moved away from this node")  # fmt: skip
    finally:
        edge.stop()


def test_edge_keeps_its_devices_offline_and_catches_up(
    tmp_path: Path, cloud: Cloud, broker: Mosquitto
) -> None:
    edge = _edge(tmp_path, cloud, broker).start()
    cloud.apiserver.kubectl("apply", "-f", str(SAMPLES / "modbus.yaml"))
    wait_for(lambda: edge.get(f"/v1/devices/{DEV}").status_code == 200, timeout=30,
             what="device at the edge")  # fmt: skip
    cloud.stop()  # the cloud goes away
    edge.stop()
    edge.start()  # restarted while the cloud is unreachable: devices come from MetaManager
    try:
        assert edge.get(f"/v1/devices/{DEV}").status_code == 200
        cloud.apiserver.kubectl("delete", "device", "thermostat-1", "--wait=false")
        cloud.process = _cloudcore(cloud.apiserver, cloud.state, cloud.port)  # cloud returns
        wait_for(lambda: edge.get(f"/v1/devices/{DEV}").status_code == 404, timeout=60,
                 what="deletion made while apart reaches the edge")  # fmt: skip
    finally:
        edge.stop()


def _reported(cloud: Cloud, prop: str) -> str | None:
    listed = cloud.apiserver.kubectl("get", "device", "thermostat-1", "-o", "json")
    got = json.loads(listed.stdout)
    for twin in got.get("status", {}).get("twins", []):
        if twin["propertyName"] == prop:
            return str(twin["reported"]["value"])
    return None


def test_reported_values_reach_device_status_even_across_a_cloud_outage(
    tmp_path: Path, cloud: Cloud, broker: Mosquitto, probe: MqttProbe
) -> None:
    edge = _edge(tmp_path, cloud, broker).start()
    try:
        cloud.apiserver.kubectl("apply", "-f", str(SAMPLES / "modbus.yaml"))
        wait_for(lambda: edge.get(f"/v1/devices/{DEV}").status_code == 200, timeout=30,
                 what="device at the edge")  # fmt: skip
        topic = f"$hw/events/device/{DEV}/twin/update"
        probe.request(topic, {"twin": {"temperature": {"actual": {"value": "19.5"}}}})
        wait_for(lambda: _reported(cloud, "temperature") == "19.5", timeout=30,
                 what="reported value in Device.status")  # fmt: skip
        cloud.stop()
        probe.request(topic, {"twin": {"temperature": {"actual": {"value": "20.5"}}}})
        cloud.process = _cloudcore(cloud.apiserver, cloud.state, cloud.port)
        wait_for(lambda: _reported(cloud, "temperature") == "20.5", timeout=60,
                 what="a report made while the cloud was away, from the outbox")  # fmt: skip
    finally:
        edge.stop()
