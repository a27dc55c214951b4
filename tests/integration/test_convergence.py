"""Devices that do not take a desired value exactly: one clamps it, one rounds it, one refuses
it. Each twin rests (a delta only per retry interval, no reconnect), says why at the edge and as
DesiredReached=False in the cloud, and converges once desired is reachable. Real simulators,
mapper, edgecore, mosquitto, cloudcore, API server and kubectl."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.cloud import CloudProcess
from harness.support import EdgeProcess, Mosquitto, MqttProbe, Proc, free_port, port_open, wait_for

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
    cloud: CloudProcess
    edge: EdgeProcess
    logs: dict[str, Path]  # simulator logs, by device

    def twin(self, name: str) -> dict[str, object]:
        return self.edge.twin(f"default/{name}", "setpoint")

    def connections(self, name: str) -> int:
        lines = self.logs[name].read_text().splitlines()
        return sum(1 for line in lines if '"client connected"' in line)

    def reached(self, name: str) -> dict[str, str]:
        """The Device's DesiredReached condition."""
        status = self.cloud.device(name).get("status") or {}
        found = [c for c in status.get("conditions") or [] if c["type"] == "DesiredReached"]
        return dict(found[0]) if found else {}

    def patch(self, name: str, value: str) -> None:
        properties = [
            {
                "name": "setpoint",
                "desired": {"value": value},
                "visitors": self.cloud.device(name)["spec"]["properties"][0]["visitors"],
            }
        ]
        self.cloud.apiserver.kubectl(
            "patch",
            "device",
            name,
            "--type",
            "merge",
            "-p",
            json.dumps({"spec": {"properties": properties}}),
        )


@pytest.fixture
def devices(tmp_path: Path, cloud: CloudProcess, broker: Mosquitto) -> Iterator[Devices]:
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
    edge = cloud.edge(tmp_path / "edge", broker.url)
    edge.extra += ["--heartbeat", "0.5"]
    edge.start()
    cloud.apiserver.kubectl("apply", "-f", str(tmp_path / "awkward.yaml"))
    mapper = Proc([sys.executable, "-m", "mappers.modbus", "--node", "edge-node-1", "--mqtt",
                   broker.url], tmp_path / "mapper.log").start()  # fmt: skip
    yield Devices(cloud, edge, logs)
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


@pytest.mark.timeout(180)
def test_unreachable_desired_values_rest_say_why_and_converge(
    devices: Devices, broker: Mosquitto
) -> None:
    for name, (_, _, reason) in AWKWARD.items():
        wait_for(lambda name=name, reason=reason: str(devices.twin(name)["reason"])
                 .startswith(reason), timeout=30, what=f"{name}: {reason}")  # fmt: skip
        assert devices.twin(name)["inSync"] is False
        # in the cloud: the condition names the property and says why, with one Event
        condition = wait_for(lambda name=name: devices.reached(name).get("status") == "False"
                             and devices.reached(name), timeout=30,
                             what=f"{name}: DesiredReached=False")  # fmt: skip
        assert condition["reason"] == "DesiredNotReached"
        assert condition["message"].startswith(f"setpoint: {reason}")
    events = [(e["involvedObject"]["name"], e["reason"])
              for e in (devices.cloud.get("events") or {}).get("items", [])]  # fmt: skip
    assert sorted(e for e in events if e[1] == "DesiredNotReached") == sorted(
        (name, "DesiredNotReached") for name in AWKWARD
    )
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
    # reachable values (one set at the edge, two with kubectl) converge, and the reasons go
    put = devices.edge.put("/v1/devices/default/clamps/twin/setpoint/desired",
                           json={"value": "30"})  # fmt: skip
    assert put.status_code == 200, put.text
    devices.patch("rounds", "22")
    devices.patch("refuses", "25")
    for name, value in (("clamps", "30"), ("rounds", "22"), ("refuses", "25")):
        wait_for(lambda name=name: devices.twin(name)["inSync"], timeout=30, what=f"{name} met")
        twin = devices.twin(name)
        assert twin["reason"] == "" and twin["reported"]["value"] == value  # type: ignore[index]
        wait_for(lambda name=name: devices.reached(name).get("status") == "True", timeout=30,
                 what=f"{name}: DesiredReached=True")  # fmt: skip
