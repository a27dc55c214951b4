"""The bluetooth driver against the bluetooth simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from devicetwin.memberspec import PropertyConfig
from harness.support import free_port
from mappers.bluetooth.bumble_backend import close_centrals
from mappers.bluetooth.driver import BluetoothDriver
from simulators.bluetooth import ADDRESS, SERIAL_UUID, SETPOINT_UUID, TEMPERATURE_UUID, HciServer
from tests.conformance import STATE, Case


async def case(tmp: pytest.TempPathFactory) -> AsyncIterator[Case]:
    server = HciServer(free_port(), state=STATE, clock=lambda: 0.0)
    await server.start()
    sim = server.simulator
    config = {"macAddress": ADDRESS, "hci": server.transport, "scanTimeout": 1, "timeout": 2}
    driver = BluetoothDriver(config)

    async def setpoint() -> float:
        return sim.state.setpoint

    async def fail(on: bool) -> None:
        sim.device_failure = on

    def characteristic(uuid: str, **more: object) -> dict[str, object]:
        return {"characteristicUUID": uuid, **more}

    yield Case(
        driver,
        PropertyConfig(
            "temperature",
            "float",
            "ReadOnly",
            characteristic(TEMPERATURE_UUID, format="<h", scale=0.01),
        ),
        PropertyConfig(
            "setpoint", "int", "ReadWrite", characteristic(SETPOINT_UUID, format="<h", scale=0.01)
        ),
        PropertyConfig("serial", "string", "ReadOnly", characteristic(SERIAL_UUID)),
        setpoint,
        sim.vanish,
        sim.reappear,
        fail,
    )
    await driver.close()
    await close_centrals()
    await server.stop()
