"""Bluetooth LE end to end: simulator + edgecore + mapper + mosquitto, all real processes."""

from __future__ import annotations

import sys
from pathlib import Path

from harness.support import SAMPLES, EdgeProcess, Mosquitto, free_port, wait_for
from tests.integration.test_modbus_end_to_end import Proc

DEV = "default/ble-thermostat-1"


def test_ble_values_flow_desired_reaches_the_peripheral_and_outage_recovers(
    tmp_path: Path, broker: Mosquitto
) -> None:
    port = free_port()
    manifest = tmp_path / "bluetooth.yaml"
    manifest.write_text((SAMPLES / "bluetooth.yaml").read_text().replace(":19002", f":{port}"))
    simulator = Proc(
        [sys.executable, "-m", "simulators.bluetooth", "--port", str(port)],
        tmp_path / "simulator.log",
    ).start()
    edge = EdgeProcess(tmp_path / "state", mqtt_url=broker.url, devices=[manifest])
    mapper = Proc(
        [sys.executable, "-m", "mappers.bluetooth", "--node", "edge-node-1", "--mqtt", broker.url],
        tmp_path / "mapper.log",
    )
    try:
        # bumble's tcp-server takes its first connection as the HCI host: no port probing,
        # the mapper retries with backoff until the simulator listens
        edge.start()
        mapper.start()

        def reported(prop: str) -> str | None:
            side = edge.twin(DEV, prop)["reported"]
            return None if side is None else str(side["value"])

        wait_for(lambda: reported("battery") == "87", timeout=60, what="battery level")
        wait_for(lambda: reported("setpoint") == "22.5", timeout=30, what="manifest setpoint")
        assert (
            edge.put(f"/v1/devices/{DEV}/twin/setpoint/desired", json={"value": "24"}).status_code
            == 200
        )
        wait_for(lambda: reported("setpoint") == "24", timeout=30, what="setpoint read back")
        wait_for(lambda: reported("temperature"), timeout=30, what="notified temperature")

        def state() -> str:
            return str(edge.get(f"/v1/devices/{DEV}").json()["state"])

        assert state() == "online"
        # the simulator process goes away with its controllers: offline; a new one: online
        simulator.stop()
        wait_for(lambda: state() == "offline", timeout=60, what="offline")
        simulator.start()
        wait_for(lambda: state() == "online", timeout=60, what="online again")
        assert (
            edge.put(f"/v1/devices/{DEV}/twin/setpoint/desired", json={"value": "25"}).status_code
            == 200
        )
        wait_for(lambda: reported("setpoint") == "25", timeout=30, what="setpoint after outage")
    finally:
        mapper.stop()
        edge.stop()
        simulator.stop()
