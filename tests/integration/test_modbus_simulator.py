"""The Modbus simulator as a third-party client sees it: pymodbus's own client over real TCP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import ConnectionException, ModbusIOException

from harness.support import free_port
from simulators.modbus import ModbusSimulator
from simulators.thermostat import Thermostat


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def sim() -> AsyncIterator[tuple[ModbusSimulator, FakeClock]]:
    clock = FakeClock()
    simulator = ModbusSimulator(free_port(), state=Thermostat(temperature=19.0), clock=clock)
    await simulator.start()
    yield simulator, clock
    await simulator.stop()


@pytest.fixture
async def client(sim: tuple[ModbusSimulator, FakeClock]) -> AsyncIterator[AsyncModbusTcpClient]:
    modbus = AsyncModbusTcpClient("127.0.0.1", port=sim[0].port, timeout=1, retries=0)
    assert await modbus.connect()
    yield modbus
    modbus.close()


async def test_input_registers_when_read_show_the_model(sim, client) -> None:
    reply = await client.read_input_registers(0, count=2, device_id=1)
    assert reply.registers == [190, 465]  # 19.0 degC; humidity at 19 degC is 46.5 %
    floats = await client.read_input_registers(10, count=2, device_id=1)
    assert client.convert_from_registers(floats.registers, client.DATATYPE.FLOAT32) == 19.0
    serial = await client.read_input_registers(20, count=8, device_id=1)
    assert (
        client.convert_from_registers(serial.registers, client.DATATYPE.STRING).rstrip("\x00")
        == "KEDGE-TH-0001"
    )


async def test_setpoint_write_when_power_on_moves_temperature(sim, client) -> None:
    simulator, clock = sim
    assert not (await client.write_register(0, 25, device_id=1)).isError()
    assert simulator.state.setpoint == 25.0
    clock.now += 4.0
    reply = await client.read_input_registers(0, count=1, device_id=1)
    assert reply.registers == [210]  # 19 + 4 s x 0.5 degC/s
    setpoint = await client.read_holding_registers(10, count=2, device_id=1)
    assert client.convert_from_registers(setpoint.registers, client.DATATYPE.FLOAT32) == 25.0


async def test_float_setpoint_and_power_coil_when_written_reach_the_model(sim, client) -> None:
    simulator, _ = sim
    registers = client.convert_to_registers(22.5, client.DATATYPE.FLOAT32)
    assert not (await client.write_registers(10, registers, device_id=1)).isError()
    assert simulator.state.setpoint == 22.5
    assert (await client.read_holding_registers(0, count=1, device_id=1)).registers == [22]
    assert not (await client.write_coil(0, False, device_id=1)).isError()
    assert simulator.state.power is False
    assert (await client.read_coils(0, count=1, device_id=1)).bits[0] is False


async def test_setpoint_out_of_range_when_written_is_illegal_value(sim, client) -> None:
    reply = await client.write_register(0, 99, device_id=1)
    assert reply.isError() and reply.exception_code == ExcCodes.ILLEGAL_VALUE
    assert sim[0].state.setpoint == 21.0


async def test_exception_fault_when_set_answers_every_request_with_it(sim, client) -> None:
    sim[0].faults.exception = ExcCodes.DEVICE_FAILURE
    reply = await client.read_input_registers(0, count=1, device_id=1)
    assert reply.isError() and reply.exception_code == ExcCodes.DEVICE_FAILURE


async def test_delay_fault_when_longer_than_timeout_times_out(sim, client) -> None:
    sim[0].faults.delay = 1.5
    with pytest.raises(ModbusIOException):
        await client.read_input_registers(0, count=1, device_id=1)


async def test_stopped_simulator_when_connected_refuses(sim) -> None:
    await sim[0].stop()
    late = AsyncModbusTcpClient("127.0.0.1", port=sim[0].port, timeout=1, retries=0)
    assert not await late.connect()
    with pytest.raises(ConnectionException):
        await late.read_input_registers(0, count=1, device_id=1)
    late.close()
