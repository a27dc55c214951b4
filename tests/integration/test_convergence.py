"""Devices that do not take a desired value exactly: one clamps it, one rounds it, one refuses
it. Each twin rests (a delta only per retry interval, no reconnect), says why at the edge, and
converges once desired is reachable. Real simulators, mapper, edgecore and mosquitto."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import EdgeProcess, Mosquitto, MqttProbe, Proc, free_port, port_open, wait_for

MODEL = """
apiVersion: devices.kubeedge.io/v1beta1
kind: DeviceModel
metadata: {name: awkward, namespace: default}
spec:
  protocol: modbus
  properties:
    - {name: setpoint, type: FLOAT, accessMode: ReadWrite, minimum: "0", maximum: "50"}
"""
DEVICE = """
---
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: {name: NAME, namespace: default}
spec:
  deviceModelRef: {name: awkward}
  nodeName: edge-node-1
  protocol: {protocolName: modbus, configData: {ip: 127.0.0.1, port: PORT, slaveID: 1}}
  properties:
    - name: setpoint
      collectCycle: 1000
      reportCycle: 10000
      desired: {value: "DESIRED"}
      visitors: {protocolName: modbus, configData: {register: HoldingRegister, offset: OFFSET}}
"""
DEVICE_WORDS = re.compile(r"(NAME|PORT|OFFSET|DESIRED)")
# name -> (holding register, desired value it cannot reach, the reason the edge gives)
AWKWARD = {
    "clamps": (2, "40", "device reports 35 for desired 40"),  # clamped to the 5..35 range
    "rounds": (0, "21.4", "device reports 21 for desired 21.4"),  # a whole-degree register
    "refuses": (0, "45", "write refused: "),  # out of range: Modbus ILLEGAL_VALUE
}


@dataclass
class Devices:
    edge: EdgeProcess
    logs: dict[str, Path]  # simulator logs, by device

    def twin(self, name: str) -> dict[str, object]:
        return self.edge.twin(f"default/{name}", "setpoint")

    def connections(self, name: str) -> int:
        lines = self.logs[name].read_text().splitlines()
        return sum(1 for line in lines if '"client connected"' in line)


@pytest.fixture
def devices(tmp_path: Path, broker: Mosquitto) -> Iterator[Devices]:
    manifest, simulators, logs = MODEL, [], {}
    for name, (offset, desired, _) in AWKWARD.items():
        port = free_port()
        logs[name] = tmp_path / f"{name}.log"
        simulators.append(Proc([sys.executable, "-m", "simulators.modbus", "--port", str(port),
                                "--log-level", "info"], logs[name]).start())  # fmt: skip
        wait_for(lambda port=port: port_open(port), what="Modbus simulator")
        fields = {"NAME": name, "PORT": str(port), "OFFSET": str(offset), "DESIRED": desired}
        manifest += "".join(fields.get(word, word) for word in DEVICE_WORDS.split(DEVICE))
    (tmp_path / "awkward.yaml").write_text(manifest)
    edge = EdgeProcess(tmp_path / "state", mqtt_url=broker.url, devices=[tmp_path / "awkward.yaml"])
    edge.start()
    mapper = Proc([sys.executable, "-m", "mappers.modbus", "--node", "edge-node-1", "--mqtt",
                   broker.url], tmp_path / "mapper.log").start()  # fmt: skip
    yield Devices(edge, logs)
    mapper.stop()
    edge.stop()
    for simulator in simulators:
        simulator.stop()


def _deltas(probe: MqttProbe, seconds: float) -> dict[str, list[float]]:
    """When each device's deltas arrived during `seconds` (relative to the start)."""
    start, out = time.monotonic(), {}
    while (left := start + seconds - time.monotonic()) > 0:
        try:
            topic, payload = probe.messages.get(timeout=left)
        except Exception:  # noqa: BLE001 - queue.Empty: the window is over
            break
        if topic.endswith("/twin/update/delta"):
            name = topic.split("/")[4]
            assert json.loads(payload)["delta"], payload
            out.setdefault(name, []).append(round(time.monotonic() - start, 1))
    return out


def test_unreachable_desired_values_rest_say_why_and_converge(
    devices: Devices, broker: Mosquitto
) -> None:
    for name, (_, _, reason) in AWKWARD.items():
        wait_for(lambda name=name, reason=reason: str(devices.twin(name)["reason"])
                 .startswith(reason), timeout=30, what=f"{name}: {reason}")  # fmt: skip
        assert devices.twin(name)["inSync"] is False
    connected = {name: devices.connections(name) for name in AWKWARD}
    probe = MqttProbe(broker.port)
    try:
        probe.subscribe("$hw/events/device/+/+/twin/update/delta")
        seen = _deltas(probe, 16)
    finally:
        probe.close()
    for name in AWKWARD:
        # the storm this replaces was thousands a second; now retries at 1, 2, 4, 8 s...
        assert len(seen.get(name, [])) <= 5, (name, seen)
    assert {name: devices.connections(name) for name in AWKWARD} == connected  # no reconnects
    # reachable values converge, and the reasons go
    for name, value in (("clamps", "30"), ("rounds", "22"), ("refuses", "25")):
        put = devices.edge.put(f"/v1/devices/default/{name}/twin/setpoint/desired",
                               json={"value": value})  # fmt: skip
        assert put.status_code == 200, put.text
        wait_for(lambda name=name: devices.twin(name)["inSync"], timeout=20, what=f"{name} met")
        twin = devices.twin(name)
        assert twin["reason"] == "" and twin["reported"]["value"] == value  # type: ignore[index]
