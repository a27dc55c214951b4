"""The Modbus driver against the simulator over real TCP, with KubeEdge sample visitors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pymodbus.constants import ExcCodes

from devicetwin.memberspec import PropertyConfig
from harness.support import free_port
from mappers.driver import DeviceRejected, DeviceUnreachable, VisitorError
from mappers.modbus.driver import EndpointPool, ModbusDriver
from simulators.modbus import ModbusSimulator
from simulators.thermostat import Thermostat

TEMPERATURE = PropertyConfig(
    "temperature",
    "float",
    "ReadOnly",
    {"register": "InputRegister", "offset": 0, "limit": 1, "scale": 0.1},
)
TEMPERATURE_F32 = PropertyConfig(
    "t32", "float", "ReadOnly", {"register": "InputRegister", "offset": 10, "limit": 2}
)
SETPOINT = PropertyConfig(
    "setpoint", "int", "ReadWrite", {"register": "HoldingRegister", "offset": 0, "limit": 1}
)
POWER = PropertyConfig("power", "boolean", "ReadWrite", {"register": "CoilRegister", "offset": 0})
SERIAL = PropertyConfig(
    "serial", "string", "ReadOnly", {"register": "InputRegister", "offset": 20, "limit": 8}
)


class FrozenClock:
    def __call__(self) -> float:
        return 0.0


@pytest.fixture
async def sim() -> AsyncIterator[ModbusSimulator]:
    simulator = ModbusSimulator(
        free_port(), state=Thermostat(temperature=19.5), clock=FrozenClock()
    )
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
def driver(sim: ModbusSimulator):
    pool = EndpointPool()
    yield ModbusDriver({"ip": "127.0.0.1", "port": sim.port, "slaveID": 1, "timeout": 1}, pool)
    pool.close()


async def test_read_when_kubeedge_visitors_gives_typed_text(driver) -> None:
    assert await driver.read(TEMPERATURE) == "19.5"
    assert await driver.read(TEMPERATURE_F32) == "19.5"
    assert await driver.read(SERIAL) == "KEDGE-TH-0001"
    assert await driver.read(POWER) == "true"


async def test_write_when_desired_reaches_the_device(driver, sim) -> None:
    await driver.write(SETPOINT, "27")
    assert sim.state.setpoint == 27.0
    assert await driver.read(SETPOINT) == "27"
    await driver.write(POWER, "false")
    assert sim.state.power is False and await driver.read(POWER) == "false"


async def test_write_when_device_refuses_value_is_rejected(driver, sim) -> None:
    with pytest.raises(DeviceRejected, match="exception code 3"):
        await driver.write(SETPOINT, "99")
    assert sim.state.setpoint == 21.0


async def test_write_when_register_is_read_only_is_a_visitor_error(driver) -> None:
    with pytest.raises(VisitorError, match="read-only"):
        await driver.write(TEMPERATURE, "20")


async def test_read_when_device_answers_exception_is_rejected_not_unreachable(driver, sim) -> None:
    sim.faults.exception = ExcCodes.DEVICE_FAILURE
    with pytest.raises(DeviceRejected, match="exception code 4"):
        await driver.read(TEMPERATURE)


async def test_read_when_simulator_down_is_unreachable_then_recovers(driver, sim) -> None:
    await sim.stop()
    with pytest.raises(DeviceUnreachable):
        await driver.read(TEMPERATURE)
    await sim.start()
    assert await driver.read(TEMPERATURE) == "19.5"


async def test_devices_on_one_endpoint_share_the_connection(sim) -> None:
    pool = EndpointPool()
    config = {"ip": "127.0.0.1", "port": sim.port, "slaveID": 1}
    first, second = ModbusDriver(config, pool), ModbusDriver(config, pool)
    assert first.endpoint is second.endpoint
    await first.read(TEMPERATURE)
    assert second.endpoint.client is first.endpoint.client
    await first.close()
    assert second.endpoint.client is not None  # still used by the second device
    await second.close()
    assert second.endpoint.client is None


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"port": 502}, "needs 'ip'"),
        ({"ip": "x", "port": "http"}, "configData"),
        ({"serialPort": "/dev/ttyS0", "parity": "mark"}, "parity"),
        ({"serialPort": "/dev/ttyS0", "dataBits": 9}, "dataBits"),
        ({"serialPort": "/dev/ttyS0", "baudRate": "fast"}, "configData"),
    ],
)
def test_driver_when_protocol_config_invalid_says_why(config, fragment) -> None:
    with pytest.raises(VisitorError, match=fragment):
        ModbusDriver(config, EndpointPool())


async def test_rtu_when_reached_over_serial_socket_url_reads_and_writes() -> None:
    """RTU framing (CRC, no MBAP) through pyserial's socket:// port, pymodbus's serial client."""
    simulator = ModbusSimulator(
        free_port(), state=Thermostat(temperature=19.5), clock=FrozenClock(), rtu=True
    )
    await simulator.start()
    pool = EndpointPool()
    config = {
        "serialPort": f"socket://127.0.0.1:{simulator.port}",
        "baudRate": 19200,
        "dataBits": 8,
        "parity": "none",
        "stopBits": 1,
        "slaveID": 1,
        "timeout": 1,
    }
    driver = ModbusDriver(config, pool)
    try:
        assert driver.endpoint.name == f"socket://127.0.0.1:{simulator.port}"
        assert await driver.read(TEMPERATURE) == "19.5"
        await driver.write(SETPOINT, "23")
        assert simulator.state.setpoint == 23.0
        assert await driver.read(SERIAL) == "KEDGE-TH-0001"
    finally:
        await driver.close()
        await simulator.stop()
