"""The whole chain with real processes: kubectl -> API server -> cloudcore -> edgecore (joined
with a token) -> Modbus mapper -> Modbus simulator, and readings back into Device.status; a
cloudcore killed with -9, and an edge cut off for 60 s while both ends change values."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.cloud import CloudProcess
from harness.support import (
    SAMPLES,
    EdgeProcess,
    Mosquitto,
    Proc,
    free_port,
    modbus_register,
    port_open,
    wait_for,
)

DEV = "default/thermostat-1"


@dataclass
class Chain:
    cloud: CloudProcess
    edge: EdgeProcess
    port: int  # the simulator's Modbus port
    manifest: Path


@pytest.fixture
def chain(tmp_path: Path, cloud: CloudProcess, broker: Mosquitto) -> Iterator[Chain]:
    port = free_port()
    simulator = Proc([sys.executable, "-m", "simulators.modbus", "--port", str(port)],
                     tmp_path / "simulator.log").start()  # fmt: skip
    wait_for(lambda: port_open(port), what="Modbus simulator")
    edge = cloud.edge(tmp_path / "edge", broker.url).start()
    mapper = Proc([sys.executable, "-m", "mappers.modbus", "--node", "edge-node-1",
                   "--mqtt", broker.url], tmp_path / "mapper.log").start()  # fmt: skip
    manifest = tmp_path / "modbus.yaml"
    manifest.write_text(
        (SAMPLES / "modbus.yaml").read_text().replace("port: 5020", f"port: {port}")
    )
    yield Chain(cloud, edge, port, manifest)
    mapper.stop()
    edge.stop()
    simulator.stop()


def _status_yaml(cloud: CloudProcess) -> dict[str, Any]:
    got = cloud.apiserver.kubectl("get", "devicestatus", "thermostat-1", "-o", "yaml",
                                  check=False)  # fmt: skip
    return dict(yaml.safe_load(got.stdout) or {}) if got.returncode == 0 else {}


def _reported(device: dict[str, Any], prop: str) -> dict[str, Any] | None:
    for twin in device.get("status", {}).get("twins", []):
        if twin["propertyName"] == prop:
            return dict(twin["reported"])
    return None


def _spec_desired(device: dict[str, Any], prop: str) -> str | None:
    for entry in device["spec"].get("properties", []):
        if entry["name"] == prop:
            return (entry.get("desired") or {}).get("value")
    return None


def _patch(cloud: CloudProcess, **desired: str) -> None:
    properties = [{"name": k, "desired": {"value": v}} for k, v in desired.items()]
    device = cloud.device("thermostat-1")
    merged = {p["name"]: p for p in device["spec"]["properties"]}
    for entry in properties:
        merged[entry["name"]] = {**merged.get(entry["name"], {"name": entry["name"]}), **entry}
    body = {"spec": {"properties": list(merged.values())}}
    cloud.apiserver.kubectl("patch", "device", "thermostat-1", "--type", "merge",
                            "-p", json.dumps(body))  # fmt: skip


def _reported_value(cloud: CloudProcess, prop: str) -> str | None:
    found = _reported({"status": cloud.reported("thermostat-1")}, prop)
    return None if found is None else str(found["value"])


def _condition(cloud: CloudProcess, kind: str) -> dict[str, Any]:
    status = cloud.device("thermostat-1").get("status") or {}
    return next((c for c in status.get("conditions") or [] if c["type"] == kind), {})


def _reading_time(cloud: CloudProcess) -> int:
    found = _reported({"status": cloud.reported("thermostat-1")}, "temperature") or {}
    return int(found.get("metadata", {}).get("timestamp", 0))


def test_kubectl_desired_reaches_the_device_and_readings_reach_device_status(chain: Chain) -> None:
    cloud = chain.cloud
    cloud.apiserver.kubectl("apply", "-f", str(chain.manifest))
    wait_for(lambda: modbus_register(chain.port) == 21, timeout=30,
             what="the manifest's desired setpoint written to the simulated device")  # fmt: skip
    wait_for(lambda: _reported(_status_yaml(cloud), "setpoint") is not None
             and _reported(_status_yaml(cloud), "setpoint")["value"] == "21",  # type: ignore[index]
             timeout=30, what="setpoint 21 in kubectl get devicestatus -o yaml")  # fmt: skip
    temperature = wait_for(lambda: _reported(_status_yaml(cloud), "temperature"), timeout=30,
                           what="a temperature reading in the DeviceStatus")  # fmt: skip
    assert 15 <= float(temperature["value"]) <= 30
    _patch(cloud, setpoint="24")
    wait_for(
        lambda: modbus_register(chain.port) == 24, timeout=30, what="kubectl patch on the device"
    )
    wait_for(lambda: _reported_value(cloud, "setpoint") == "24", timeout=30,
             what="the patched setpoint read back into the DeviceStatus")  # fmt: skip
    assert cloud.reported("thermostat-1")["state"] == "online"
    # the DeviceStatus belongs to its Device: named alike, owned by it, deleted with it
    owner = _status_yaml(cloud)["metadata"]["ownerReferences"][0]
    device = cloud.device("thermostat-1")
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "Device",
        "thermostat-1",
        device["metadata"]["uid"],
        True,
    )
    assert "twins" not in (device.get("status") or {})  # reports never touch the Device
    cloud.apiserver.kubectl("delete", "device", "thermostat-1")
    wait_for(lambda: cloud.get("devicestatus", "thermostat-1") is None, timeout=30,
             what="the DeviceStatus deleted with its Device")  # fmt: skip


def test_cloudcore_killed_while_the_mapper_reports_loses_nothing(chain: Chain) -> None:
    cloud, edge = chain.cloud, chain.edge
    cloud.apiserver.kubectl("apply", "-f", str(chain.manifest))
    wait_for(lambda: _reported_value(cloud, "temperature") is not None, timeout=30,
             what="readings in Device.status")  # fmt: skip
    cloud.kill()  # SIGKILL: no goodbye, nothing flushed
    _patch(cloud, setpoint="26")  # made while cloudcore is dead
    while_dead = edge.twin(DEV, "temperature")["reported"]["timestamp"]
    wait_for(lambda: edge.twin(DEV, "temperature")["reported"]["timestamp"] > while_dead,
             timeout=20, what="the mapper reporting while cloudcore is dead")  # fmt: skip
    latest = edge.twin(DEV, "temperature")["reported"]["timestamp"]
    cloud.start()
    wait_for(lambda: modbus_register(chain.port) == 26, timeout=60,
             what="the patch made while cloudcore was dead reaches the device")  # fmt: skip
    wait_for(lambda: _reading_time(cloud) >= latest, timeout=60,
             what="readings taken while cloudcore was dead in Device.status")  # fmt: skip
    wait_for(lambda: _reported_value(cloud, "setpoint") == "26", timeout=30,
             what="status converged")  # fmt: skip


@pytest.mark.timeout(240)  # a 60 s partition, two cloudcore restarts and convergence
def test_edge_cut_off_for_60s_with_changes_at_both_ends_agrees_after_reconnect(
    chain: Chain,
) -> None:
    cloud, edge = chain.cloud, chain.edge
    cloud.apiserver.kubectl("apply", "-f", str(chain.manifest))
    wait_for(lambda: _reported_value(cloud, "setpoint") == "21", timeout=30,
             what="setpoint 21 everywhere")  # fmt: skip
    cloud.stop()  # the edge is cut off from the cloud
    cut_at, step = time.monotonic(), 0
    while time.monotonic() - cut_at < 60:  # changes at both ends, throughout the 60 s
        step += 1
        _patch(cloud, setpoint=str(10 + step % 5), power="true" if step % 2 else "false")
        edge_value = str(28 + step % 5)
        put = edge.put(f"/v1/devices/{DEV}/twin/setpoint/desired", json={"value": edge_value})
        assert put.status_code == 200
        wait_for(lambda v=int(edge_value): modbus_register(chain.port) == v, timeout=15,  # type: ignore[misc]
                 what="the edge's own writes keep reaching the device while cut off")  # fmt: skip
    cloud_power = "true" if step % 2 else "false"
    cloud.start()
    # the rule: the edge wins desired unless the cloud had seen its change (it had not), so
    # setpoint ends as the edge's last value on both sides; power (changed by the cloud only)
    # ends as the cloud's last value
    wait_for(lambda: _spec_desired(cloud.device("thermostat-1"), "setpoint") == edge_value,
             timeout=60, what="the edge's setpoint adopted into the Device")  # fmt: skip
    wait_for(lambda: (edge.twin(DEV, "power")["desired"] or {}).get("value") == cloud_power,
             timeout=60, what="the cloud's power value at the edge")  # fmt: skip
    assert edge.twin(DEV, "setpoint")["desired"]["value"] == edge_value
    wait_for(lambda: modbus_register(chain.port, coil=True) == (cloud_power == "true"), timeout=30,
             what="the cloud's power value on the device")  # fmt: skip
    wait_for(lambda: _reported_value(cloud, "setpoint") == edge_value, timeout=30,
             what="the device's setpoint in Device.status")  # fmt: skip
    assert modbus_register(chain.port) == int(edge_value)
    # the user learns that their last patch lost: a condition and a Warning Event say which
    # value was kept and when the edge wrote it
    kept = wait_for(lambda: (c := _condition(cloud, "DesiredAccepted")).get("status") == "False"
                    and c, timeout=30, what="DesiredAccepted=False")  # fmt: skip
    assert kept["reason"] == "EdgeValueKept"
    assert kept["message"].startswith(f"setpoint: kept {edge_value}, written at the edge at ")
    events = (cloud.get("events") or {}).get("items", [])
    assert any(e["reason"] == "EdgeValueKept" and e["involvedObject"]["name"] == "thermostat-1"
               for e in events)  # fmt: skip
    # and afterwards the cloud, having seen the edge's change, wins again
    _patch(cloud, setpoint="22")
    wait_for(
        lambda: modbus_register(chain.port) == 22, timeout=30, what="a later kubectl patch applies"
    )
    wait_for(lambda: _condition(cloud, "DesiredAccepted").get("status") == "True", timeout=30,
             what="DesiredAccepted=True again")  # fmt: skip
