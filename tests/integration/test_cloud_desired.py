"""kubectl patch of a desired value over Modbus and Bluetooth LE: the value reaches the device
without a reconnect or a restarted worker; a value the device clamps shows in the cloud as
DesiredReached=False with one Warning Event, and clears once desired is reachable."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from harness.cloud import CloudProcess
from harness.support import SAMPLES, Mosquitto, MqttProbe, Proc, free_port, port_open, wait_for

CLAMPED = """
---
apiVersion: devices.kubeedge.io/v1beta1
kind: DeviceModel
metadata: {name: wide-range, namespace: default}
spec:
  protocol: modbus
  properties:
    - {name: setpoint, type: INT, accessMode: ReadWrite, minimum: "0", maximum: "50"}
---
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: {name: clamper, namespace: default}
spec:
  deviceModelRef: {name: wide-range}
  nodeName: edge-node-1
  protocol: {protocolName: modbus, configData: {ip: 127.0.0.1, port: PORT, slaveID: 1}}
  properties:
    - name: setpoint
      desired: {value: "40"}
      visitors: {protocolName: modbus, configData: {register: HoldingRegister, offset: 2}}
"""


def _simulator(protocol: str, port: int, log: Path) -> Proc:
    return Proc([sys.executable, "-m", f"simulators.{protocol}", "--port", str(port),
                 "--log-level", "info"], log).start()  # fmt: skip


def _mapper(protocol: str, broker: Mosquitto, log: Path) -> Proc:
    return Proc([sys.executable, "-m", f"mappers.{protocol}", "--node", "edge-node-1", "--mqtt",
                 broker.url], log).start()  # fmt: skip


def _count(log: Path, text: str) -> int:
    return log.read_text().count(text) if log.exists() else 0


def _patch(cloud: CloudProcess, device: str, prop: str, value: str) -> None:
    current = cloud.device(device)["spec"]["properties"]
    properties = [{**p, "desired": {"value": value}} if p["name"] == prop else p for p in current]
    cloud.apiserver.kubectl("patch", "device", device, "--type", "merge",
                            "-p", json.dumps({"spec": {"properties": properties}}))  # fmt: skip


def _reported(cloud: CloudProcess, device: str, prop: str) -> str | None:
    for twin in cloud.reported(device).get("twins", []):
        if twin["propertyName"] == prop:
            return str(twin["reported"]["value"])
    return None


def _condition(cloud: CloudProcess, device: str, kind: str) -> dict[str, Any]:
    status = cloud.device(device).get("status") or {}
    return next((c for c in status.get("conditions") or [] if c["type"] == kind), {})


def test_kubectl_desired_keeps_connections_and_unreached_values_show(
    tmp_path: Path, cloud: CloudProcess, broker: Mosquitto
) -> None:
    ports = {"modbus": free_port(), "clamp": free_port(), "bluetooth": free_port()}
    logs = {name: tmp_path / f"{name}-simulator.log" for name in ports}
    simulators = [_simulator("modbus", ports["modbus"], logs["modbus"]),
                  _simulator("modbus", ports["clamp"], logs["clamp"]),
                  _simulator("bluetooth", ports["bluetooth"], logs["bluetooth"])]  # fmt: skip
    mapper_logs = {p: tmp_path / f"{p}-mapper.log" for p in ("modbus", "bluetooth")}
    edge = cloud.edge(tmp_path / "edge", broker.url)
    edge.extra += ["--heartbeat", "0.5"]
    mappers: list[Proc] = []
    try:
        wait_for(lambda: port_open(ports["modbus"]) and port_open(ports["clamp"]),
                 what="Modbus simulators")  # fmt: skip
        edge.start()
        mappers = [_mapper(p, broker, log) for p, log in mapper_logs.items()]
        manifest = tmp_path / "devices.yaml"
        manifest.write_text(
            (SAMPLES / "modbus.yaml").read_text().replace("5020", str(ports["modbus"]))
            + "---\n" + (SAMPLES / "bluetooth.yaml").read_text()
            .replace(":19002", f":{ports['bluetooth']}")
            + CLAMPED.replace("PORT", str(ports["clamp"]))
        )  # fmt: skip
        cloud.apiserver.kubectl("apply", "-f", str(manifest))
        wait_for(lambda: _reported(cloud, "thermostat-1", "setpoint") == "21", timeout=60,
                 what="the Modbus setpoint")  # fmt: skip
        wait_for(lambda: _reported(cloud, "ble-thermostat-1", "setpoint") == "22.5", timeout=60,
                 what="the BLE setpoint")  # fmt: skip
        connected = {name: _count(logs[name], '"msg":"client connected"') for name in ("modbus",)}
        linked = _count(logs["bluetooth"], '"msg":"central connected"')
        added = {p: _count(log, '"msg":"device added"') for p, log in mapper_logs.items()}
        assert connected["modbus"] >= 1 and linked >= 1

        probe = MqttProbe(broker.port)
        probe.subscribe("$hw/events/node/edge-node-1/membership/updated/#")
        try:
            _patch(cloud, "thermostat-1", "setpoint", "25")
            _patch(cloud, "ble-thermostat-1", "setpoint", "24")
            wait_for(lambda: _reported(cloud, "thermostat-1", "setpoint") == "25", timeout=30,
                     what="the patched Modbus setpoint read back")  # fmt: skip
            wait_for(lambda: _reported(cloud, "ble-thermostat-1", "setpoint") == "24",
                     timeout=30, what="the patched BLE setpoint read back")  # fmt: skip
            assert probe.messages.empty()  # only deltas went out, no membership change
        finally:
            probe.close()
        # the same connections, the same workers: a desired value is not a new device
        assert _count(logs["modbus"], '"msg":"client connected"') == connected["modbus"]
        assert _count(logs["bluetooth"], '"msg":"central connected"') == linked
        for protocol, log in mapper_logs.items():
            assert _count(log, '"msg":"device added"') == added[protocol], protocol
            assert _count(log, '"msg":"device removed"') == 0, protocol

        # 40 is within the model's range, but the device clamps it to 35
        reached = wait_for(lambda: (c := _condition(cloud, "clamper", "DesiredReached"))
                           .get("status") == "False" and c, timeout=30,
                           what="DesiredReached=False")  # fmt: skip
        assert reached["reason"] == "DesiredNotReached"
        assert reached["message"] == "setpoint: device reports 35 for desired 40"
        events = [e for e in (cloud.get("events") or {}).get("items", [])
                  if e["reason"] == "DesiredNotReached"]  # fmt: skip
        assert len(events) == 1 and events[0]["involvedObject"]["name"] == "clamper"
        _patch(cloud, "clamper", "setpoint", "30")
        wait_for(lambda: _condition(cloud, "clamper", "DesiredReached").get("status") == "True",
                 timeout=30, what="DesiredReached=True once reachable")  # fmt: skip
        assert _reported(cloud, "clamper", "setpoint") == "30"
    finally:
        for process in (*mappers, *simulators):
            process.stop()
        edge.stop()
