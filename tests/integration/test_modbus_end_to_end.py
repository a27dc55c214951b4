"""Modbus end to end: simulator + edgecore + mapper + mosquitto, all real processes."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.support import SAMPLES, EdgeProcess, Mosquitto, Proc, free_port, port_open, wait_for

DEV = "default/thermostat-1"


def manifest(tmp_path: Path, port: int, scale: str = "0.1") -> Path:
    text = (SAMPLES / "modbus.yaml").read_text().replace("port: 5020", f"port: {port}")
    text = text.replace("scale: 0.1", f"scale: {scale}")
    path = tmp_path / f"modbus-{scale}.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def system(tmp_path: Path, broker: Mosquitto) -> Iterator[dict[str, Any]]:
    port = free_port()
    simulator = Proc(
        [sys.executable, "-m", "simulators.modbus", "--port", str(port)], tmp_path / "simulator.log"
    ).start()
    wait_for(lambda: port_open(port), what="simulator")
    edge = EdgeProcess(
        tmp_path / "state", mqtt_url=broker.url, devices=[manifest(tmp_path, port)]
    ).start()
    mapper = Proc(
        [
            sys.executable,
            "-m",
            "mappers.modbus",
            "--node",
            "edge-node-1",
            "--mqtt",
            broker.url,
            "--offline-after",
            "2",
        ],
        tmp_path / "mapper.log",
    ).start()
    parts = {"edge": edge, "simulator": simulator, "mapper": mapper, "port": port, "tmp": tmp_path}
    yield parts
    mapper.stop()
    parts["edge"].stop()
    parts["simulator"].stop()


def twin(edge: EdgeProcess, prop: str) -> dict[str, Any]:
    return edge.twin(DEV, prop)


def reported(edge: EdgeProcess, prop: str) -> str | None:
    side = twin(edge, prop)["reported"]
    return None if side is None else str(side["value"])


def test_values_flow_desired_reaches_device_and_outage_is_survived(system) -> None:
    edge: EdgeProcess = system["edge"]
    wait_for(lambda: reported(edge, "temperature"), timeout=20, what="first temperature")
    assert 18.0 <= float(reported(edge, "temperature") or 0) <= 25.0
    # the manifest's desired setpoint (21) was written on start; now an edge-local one
    wait_for(lambda: reported(edge, "setpoint") == "21", timeout=20, what="manifest setpoint")
    assert (
        edge.put(f"/v1/devices/{DEV}/twin/setpoint/desired", json={"value": "25"}).status_code
        == 200
    )
    wait_for(
        lambda: twin(edge, "setpoint")["inSync"] and reported(edge, "setpoint") == "25",
        timeout=20,
        what="setpoint 25 read back from the device",
    )
    assert edge.get(f"/v1/devices/{DEV}").json()["state"] == "online"

    system["simulator"].stop()  # outage
    wait_for(
        lambda: edge.get(f"/v1/devices/{DEV}").json()["state"] == "offline",
        timeout=30,
        what="device offline",
    )
    before = twin(edge, "temperature")["reported"]["timestamp"]
    system["simulator"].start()  # the device comes back (a fresh thermostat at 19 degC)
    wait_for(
        lambda: edge.get(f"/v1/devices/{DEV}").json()["state"] == "online",
        timeout=60,
        what="device online again",
    )
    wait_for(
        lambda: twin(edge, "temperature")["reported"]["timestamp"] > before,
        timeout=20,
        what="fresh values after the outage",
    )


def test_spec_change_is_followed_live(system) -> None:
    edge: EdgeProcess = system["edge"]
    wait_for(lambda: reported(edge, "temperature"), timeout=20, what="first temperature")
    edge.stop()
    edge.devices = [manifest(system["tmp"], system["port"], scale="1")]
    edge.start()  # announces the changed device on membership/updated
    wait_for(
        lambda: float(reported(edge, "temperature") or 0) > 100,
        timeout=30,
        what="temperature read with the new scale (x1 instead of x0.1)",
    )
