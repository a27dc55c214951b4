"""The opcua driver against the opcua simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from devicetwin.memberspec import PropertyConfig
from harness.support import free_port
from mappers.opcua.driver import OpcUaDriver, SessionPool
from simulators.opcua import OpcUaSimulator
from tests.conformance import STATE, Case


async def case(tmp: pytest.TempPathFactory) -> AsyncIterator[Case]:
    sim = OpcUaSimulator(free_port(), state=STATE, clock=lambda: 0.0)
    await sim.start()
    driver = OpcUaDriver({"url": sim.url, "timeout": 2}, SessionPool())

    async def setpoint() -> float:
        await sim.tick()
        return sim.state.setpoint

    async def fail(on: bool) -> None:
        sim.device_failure = on
        await sim.tick()

    def node(name: str) -> dict[str, str]:
        return {"nodeID": f"ns=2;s=Thermostat.{name}"}

    yield Case(
        driver,
        PropertyConfig("temperature", "double", "ReadOnly", node("Temperature")),
        PropertyConfig("setpoint", "int", "ReadWrite", {**node("Setpoint"), "dataType": "Double"}),
        PropertyConfig("serial", "string", "ReadOnly", node("Serial")),
        setpoint,
        sim.stop,
        sim.start,
        fail,
    )
    await driver.close()
    await sim.stop()
