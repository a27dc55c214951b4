"""OPC UA end to end: simulator + edgecore + mapper + mosquitto, all real processes."""

from __future__ import annotations

import sys
from pathlib import Path

from harness.support import SAMPLES, EdgeProcess, Mosquitto, free_port, port_open, wait_for
from tests.integration.test_modbus_end_to_end import Proc

DEV = "default/thermostat-opcua-1"


def test_opcua_values_flow_and_desired_reaches_the_server(
    tmp_path: Path, broker: Mosquitto
) -> None:
    port = free_port()
    manifest = tmp_path / "opcua.yaml"
    manifest.write_text((SAMPLES / "opcua.yaml").read_text().replace(":4840/", f":{port}/"))
    simulator = Proc(
        [sys.executable, "-m", "simulators.opcua", "--port", str(port)], tmp_path / "simulator.log"
    ).start()
    edge = EdgeProcess(tmp_path / "state", mqtt_url=broker.url, devices=[manifest])
    mapper = Proc(
        [sys.executable, "-m", "mappers.opcua", "--node", "edge-node-1", "--mqtt", broker.url],
        tmp_path / "mapper.log",
    )
    try:
        wait_for(lambda: port_open(port), timeout=30, what="OPC UA simulator")
        edge.start()
        mapper.start()

        def reported(prop: str) -> str | None:
            side = edge.twin(DEV, prop)["reported"]
            return None if side is None else str(side["value"])

        wait_for(lambda: reported("temperature"), timeout=30, what="first temperature")
        wait_for(lambda: reported("setpoint") == "22.5", timeout=30, what="manifest setpoint")
        assert (
            edge.put(f"/v1/devices/{DEV}/twin/setpoint/desired", json={"value": "24"}).status_code
            == 200
        )
        wait_for(lambda: reported("setpoint") == "24", timeout=30, what="setpoint 24 read back")
        assert edge.get(f"/v1/devices/{DEV}").json()["state"] == "online"
    finally:
        mapper.stop()
        edge.stop()
        simulator.stop()
