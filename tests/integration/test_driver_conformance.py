"""One suite over every driver and its simulator: the contract the runtime relies on.

A new protocol adds a case here: its simulator with outage and failure switches, its driver, and
visitors for the thermostat's temperature (read-only), setpoint (writable) and serial (string).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from pymodbus.constants import ExcCodes

from mappers.bluetooth.bumble_backend import close_centrals
from mappers.bluetooth.driver import BluetoothDriver
from mappers.driver import DeviceRejected, DeviceUnreachable, Driver, PropertyConfig, VisitorError
from mappers.modbus.driver import EndpointPool, ModbusDriver
from mappers.opcua.driver import OpcUaDriver, SessionPool
from mappers.zigbee.driver import ZigbeeDriver
from mappers.zigbee.network import NetworkPool
from simulators.bluetooth import ADDRESS, SERIAL_UUID, SETPOINT_UUID, TEMPERATURE_UUID, HciServer
from simulators.modbus import ModbusSimulator
from simulators.opcua import OpcUaSimulator
from simulators.thermostat import Thermostat
from simulators.zigbee import THERMOSTAT_IEEE, ZigbeeSimulator
from simulators.zigbee_devices import ThermostatDevice
from tests.support import free_port
from tests.zigbee import joined_network

STATE = Thermostat(temperature=19.5, setpoint=21.0)


@dataclass
class Case:
    driver: Driver
    temperature: PropertyConfig
    setpoint: PropertyConfig
    serial: PropertyConfig
    setpoint_of: Callable[[], Awaitable[float]]  # what the device now holds
    outage: Callable[[], Awaitable[None]]
    recover: Callable[[], Awaitable[None]]
    fail: Callable[[bool], Awaitable[None]]  # the device answers with an error while True


async def modbus_case() -> AsyncIterator[Case]:
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


async def opcua_case() -> AsyncIterator[Case]:
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


async def bluetooth_case() -> AsyncIterator[Case]:
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


async def zigbee_case(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Case]:
    sim = ZigbeeSimulator(free_port(), clock=lambda: 0.0)
    await sim.start()
    thermostat = sim.device(THERMOSTAT_IEEE)
    assert isinstance(thermostat, ThermostatDevice)
    thermostat.state = STATE
    pool = NetworkPool()
    radio = {"radio": "xbee", "path": f"socket://127.0.0.1:{sim.port}"}
    radio["database"] = str(tmp_path_factory.mktemp("zigbee") / "network.db")
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


@pytest.fixture(
    params=[modbus_case, opcua_case, bluetooth_case, zigbee_case],
    ids=["modbus", "opcua", "bluetooth", "zigbee"],
)
async def case(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Case]:
    factory = request.param
    made_cases = factory(tmp_path_factory) if factory is zigbee_case else factory()
    async for made in made_cases:
        yield made


async def test_read_gives_twin_text_of_the_property_type(case: Case) -> None:
    assert await case.driver.read(case.temperature) == "19.5"
    assert await case.driver.read(case.serial) == "KEDGE-TH-0001"


async def test_write_reaches_the_device_and_reads_back(case: Case) -> None:
    await case.driver.write(case.setpoint, "24")
    assert await case.setpoint_of() == 24.0
    assert await case.driver.read(case.setpoint) == "24"


async def test_device_error_is_rejected_and_device_stays_reachable(case: Case) -> None:
    await case.fail(True)
    with pytest.raises(DeviceRejected):
        await case.driver.read(case.temperature)
    await case.fail(False)
    assert await case.driver.read(case.serial) == "KEDGE-TH-0001"


async def test_outage_is_unreachable_and_recovery_needs_no_new_driver(case: Case) -> None:
    assert await case.driver.read(case.serial) == "KEDGE-TH-0001"
    await case.outage()
    with pytest.raises(DeviceUnreachable):
        await case.driver.read(case.serial)
    await case.recover()
    assert await case.driver.read(case.serial) == "KEDGE-TH-0001"


async def test_value_that_does_not_fit_is_a_visitor_error_before_any_io(case: Case) -> None:
    with pytest.raises(VisitorError):
        await case.driver.write(case.setpoint, "warm")
