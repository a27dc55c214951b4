"""Cloud and edge joined: kubectl -> API server -> cloudcore (DeviceController, CloudHub) ->
edgecore (EdgeHub, MetaManager, twins), all real processes over wss with mutual TLS."""

from __future__ import annotations

import json
from pathlib import Path

from harness.cloud import CloudProcess
from harness.support import SAMPLES, EdgeProcess, Mosquitto, MqttProbe, wait_for

DEV = "default/thermostat-1"


def _edge(tmp_path: Path, cloud: CloudProcess, broker: Mosquitto) -> EdgeProcess:
    return cloud.edge(tmp_path / "edge", broker.url)


def test_kubectl_declared_devices_reach_the_edge_and_follow_changes(
    tmp_path: Path, cloud: CloudProcess, broker: Mosquitto
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
    tmp_path: Path, cloud: CloudProcess, broker: Mosquitto
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
        cloud.start()  # cloud returns
        wait_for(lambda: edge.get(f"/v1/devices/{DEV}").status_code == 404, timeout=60,
                 what="deletion made while apart reaches the edge")  # fmt: skip
    finally:
        edge.stop()


def _reported(cloud: CloudProcess, prop: str) -> str | None:
    for twin in cloud.reported("thermostat-1").get("twins", []):
        if twin["propertyName"] == prop:
            return str(twin["reported"]["value"])
    return None


def test_reported_values_reach_device_status_even_across_a_cloud_outage(
    tmp_path: Path, cloud: CloudProcess, broker: Mosquitto, probe: MqttProbe
) -> None:
    edge = _edge(tmp_path, cloud, broker).start()
    try:
        cloud.apiserver.kubectl("apply", "-f", str(SAMPLES / "modbus.yaml"))
        wait_for(lambda: edge.get(f"/v1/devices/{DEV}").status_code == 200, timeout=30,
                 what="device at the edge")  # fmt: skip
        topic = f"$hw/events/device/{DEV}/twin/update"
        probe.request(topic, {"twin": {"temperature": {"actual": {"value": "19.5"}}}})
        wait_for(lambda: _reported(cloud, "temperature") == "19.5", timeout=30,
                 what="reported value in the DeviceStatus")  # fmt: skip
        cloud.stop()
        probe.request(topic, {"twin": {"temperature": {"actual": {"value": "20.5"}}}})
        cloud.start()
        wait_for(lambda: _reported(cloud, "temperature") == "20.5", timeout=60,
                 what="a report made while the cloud was away, from the outbox")  # fmt: skip
    finally:
        edge.stop()
