"""ZigBee end to end: XBee radio simulator + edgecore + mapper + mosquitto, all real processes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from harness.support import (
    SAMPLES,
    EdgeProcess,
    Mosquitto,
    MqttProbe,
    free_port,
    port_open,
    wait_for,
)
from tests.integration.test_modbus_end_to_end import Proc

THERMOSTAT = "default/zigbee-thermostat-1"
LIGHT = "default/zigbee-light-1"
COORDINATOR = "default/zigbee-coordinator"


def _simulator(port: int, log: Path, *extra: str) -> Proc:
    args = [sys.executable, "-m", "simulators.zigbee", "--port", str(port), *extra]
    simulator = Proc(args, log).start()
    wait_for(lambda: port_open(port), what="zigbee simulator")
    return simulator


def test_devices_join_report_take_desired_and_survive_a_radio_outage(
    tmp_path: Path, broker: Mosquitto
) -> None:
    port = free_port()
    manifest = tmp_path / "zigbee.yaml"
    manifest.write_text((SAMPLES / "zigbee.yaml").read_text().replace(":19003", f":{port}"))
    simulator = _simulator(port, tmp_path / "simulator.log")
    edge = EdgeProcess(tmp_path / "state", mqtt_url=broker.url, devices=[manifest])
    mapper_env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "xdg")}
    mapper = Proc(
        [sys.executable, "-m", "mappers.zigbee", "--node", "edge-node-1", "--mqtt", broker.url],
        tmp_path / "mapper.log",
        env=mapper_env,
    )

    def reported(device: str, prop: str) -> str | None:
        side = edge.twin(device, prop)["reported"]
        return None if side is None else str(side["value"])

    def state(device: str) -> str:
        return str(edge.get(f"/v1/devices/{device}").json()["state"])

    try:
        edge.start()
        mapper.start()
        # the manifest's permitJoin opens the network; both devices join and are interviewed
        wait_for(lambda: reported(THERMOSTAT, "setpoint") == "22.5", timeout=60, what="setpoint")
        wait_for(lambda: reported(LIGHT, "on") == "true", timeout=30, what="light switched on")
        wait_for(lambda: reported(THERMOSTAT, "temperature"), timeout=30, what="reported temp")
        # the join window held open is what the coordinator reports: desired met, the twin rests
        wait_for(lambda: edge.twin(COORDINATOR, "permitJoin")["inSync"], what="permitJoin met")
        assert reported(COORDINATOR, "permitJoin") == "120"
        # and rests: no deltas for the coordinator (it was thousands a second)
        probe = MqttProbe(broker.port)
        try:
            probe.subscribe(f"$hw/events/device/{COORDINATOR}/twin/update/delta")
            with pytest.raises(TimeoutError):
                probe.expect(f"$hw/events/device/{COORDINATOR}/twin/update/delta", timeout=6)
        finally:
            probe.close()
        # desired over HTTP reaches the devices: an attribute write and a cluster command
        put = edge.put(f"/v1/devices/{THERMOSTAT}/twin/setpoint/desired", json={"value": "24"})
        assert put.status_code == 200
        put = edge.put(f"/v1/devices/{LIGHT}/twin/level/desired", json={"value": "100"})
        assert put.status_code == 200
        wait_for(lambda: reported(THERMOSTAT, "setpoint") == "24", timeout=30, what="setpoint")
        wait_for(lambda: reported(LIGHT, "level") == "100", timeout=30, what="light level")
        # close joining again: desired 0
        put = edge.put(f"/v1/devices/{COORDINATOR}/twin/permitJoin/desired", json={"value": "0"})
        assert put.status_code == 200
        wait_for(lambda: reported(COORDINATOR, "permitJoin") == "0", timeout=30, what="closed")
        # the radio goes away: devices go offline; it comes back (devices still joined): online
        simulator.stop()
        wait_for(lambda: state(LIGHT) == "offline", timeout=60, what="offline")
        simulator = _simulator(port, tmp_path / "simulator.log", "--joined")
        wait_for(lambda: state(LIGHT) == "online", timeout=60, what="online again")
        put = edge.put(f"/v1/devices/{LIGHT}/twin/on/desired", json={"value": "false"})
        assert put.status_code == 200
        wait_for(lambda: reported(LIGHT, "on") == "false", timeout=30, what="switched off")
    finally:
        mapper.stop()
        edge.stop()
        simulator.stop()
