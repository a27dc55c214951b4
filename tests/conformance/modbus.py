"""The modbus driver against the modbus simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pymodbus.constants import ExcCodes

from devicetwin.memberspec import PropertyConfig
from harness.support import free_port
from mappers.modbus.driver import EndpointPool, ModbusDriver
from simulators.modbus import ModbusSimulator
from tests.conformance import STATE, Case


async def case(tmp: pytest.TempPathFactory) -> AsyncIterator[Case]:
    sim = ModbusSimulator(free_port(), state=STATE, clock=lambda: 0.0)
    await sim.start()
    driver = ModbusDriver({"ip": "127.0.0.1", "port": sim.port, "timeout": 1}, EndpointPool())

    async def setpoint() -> float:
        return sim.state.setpoint

    async def fail(on: bool) -> None:
        sim.faults.exception = ExcCodes.DEVICE_FAILURE if on else None

    yield Case(
        driver,
        PropertyConfig(
            "temperature",
            "float",
            "ReadOnly",
            {"register": "InputRegister", "offset": 0, "scale": 0.1},
        ),
        PropertyConfig("setpoint", "int", "ReadWrite", {"register": "HoldingRegister"}),
        PropertyConfig(
            "serial", "string", "ReadOnly", {"register": "InputRegister", "offset": 20, "limit": 8}
        ),
        setpoint,
        sim.stop,
        sim.start,
        fail,
    )
    await driver.close()
    await sim.stop()
