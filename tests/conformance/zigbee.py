"""The zigbee driver against the zigbee simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from devicetwin.memberspec import PropertyConfig
from harness.support import free_port
from mappers.zigbee.driver import ZigbeeDriver
from mappers.zigbee.network import NetworkPool
from simulators.zigbee import THERMOSTAT_IEEE, ZigbeeSimulator
from simulators.zigbee_products import ThermostatDevice
from tests.conformance import STATE, Case
from tests.zigbee import joined_network


async def case(tmp: pytest.TempPathFactory) -> AsyncIterator[Case]:
    sim = ZigbeeSimulator(free_port(), clock=lambda: 0.0)
    await sim.start()
    thermostat = sim.device(THERMOSTAT_IEEE)
    assert isinstance(thermostat, ThermostatDevice)
    thermostat.state = STATE
    pool = NetworkPool()
    radio = {"radio": "xbee", "path": f"socket://127.0.0.1:{sim.port}"}
    radio["database"] = str(tmp.mktemp("zigbee") / "network.db")
    driver = ZigbeeDriver({**radio, "ieee": THERMOSTAT_IEEE, "timeout": 2}, pool)
    await joined_network(driver.network, sim)

    async def setpoint() -> float:
        return thermostat.state.setpoint

    async def fail(on: bool) -> None:
        thermostat.failing = on

    yield Case(
        driver,
        PropertyConfig(
            "temperature",
            "float",
            "ReadOnly",
            {"cluster": "0x0402", "attribute": "measured_value", "scale": 0.01},
        ),
        PropertyConfig(
            "setpoint",
            "int",
            "ReadWrite",
            {"cluster": "thermostat", "attribute": 0x0012, "scale": 0.01},
        ),
        PropertyConfig(
            "serial", "string", "ReadOnly", {"cluster": 0, "attribute": "serial_number"}
        ),
        setpoint,
        sim.stop,
        sim.start,
        fail,
    )
    await driver.close()
    await sim.stop()
