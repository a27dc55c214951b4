"""Modbus TCP thermostat simulator (pymodbus server) with switchable faults.

Register map (device id 1 by default):

    coils            0        power (on/off)
    input registers  0        temperature x10 (uint16)      1   humidity x10 (uint16)
                     10-11    temperature float32 (big-endian words)
                     20-27    serial number (UTF-8, 16 bytes)
    holding          0        setpoint, whole degC (uint16)  10-11  setpoint float32
                     2        setpoint, whole degC, clamped to the range instead of refused

Every request first advances the shared thermostat model to "now", applies a write to the model
(an out-of-range setpoint is refused with ILLEGAL_VALUE, as a real controller would), then
refreshes the registers from the model, so reads always show the model's state.

With `rtu=True` the same port speaks RTU framing (CRC, no MBAP header): a serial bus carried
over TCP, which a client reaches as serialPort `socket://host:port`.

Faults, for tests: `delay` before each reply, `exception` code returned for every request,
`stop()`/`start()` to refuse connections (stopping also drops the open ones). Every client
connection is counted and logged ("client connected", with the count), so a test can tell
whether a mapper reconnected.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from simulators.cli import run_simulator
from simulators.thermostat import SETPOINT_RANGE, Thermostat, ThermostatError

log = logging.getLogger("kedge.simulator.modbus")
_COILS, _DISCRETE, _HOLDING, _INPUT = (1, 5, 15), (2,), (3, 6, 16, 22, 23), (4,)
SERIAL_REGISTERS = 8


@dataclass
class Faults:
    """What the simulator does wrong on purpose; change the fields at any time."""

    delay: float = 0.0
    exception: ExcCodes | None = None


def _float32(value: float) -> list[int]:
    high, low = struct.unpack(">HH", struct.pack(">f", value))
    return [high, low]


def _serial(text: str) -> list[int]:
    raw = text.encode()[: 2 * SERIAL_REGISTERS].ljust(2 * SERIAL_REGISTERS, b"\x00")
    return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]


def input_registers(state: Thermostat) -> dict[int, int]:
    """Input-register contents for a thermostat state, by address."""
    values = {0: round(state.temperature * 10), 1: round(state.humidity * 10)}
    values.update(zip((10, 11), _float32(state.temperature), strict=True))
    values.update(zip(range(20, 20 + SERIAL_REGISTERS), _serial(state.serial), strict=True))
    return values


def holding_registers(state: Thermostat) -> dict[int, int]:
    values = {0: int(state.setpoint), 2: int(state.setpoint)}
    values.update(zip((10, 11), _float32(state.setpoint), strict=True))
    return values


def apply_holding_write(state: Thermostat, address: int, values: list[int]) -> Thermostat:
    """The model after a client wrote `values` at `address`; ThermostatError if refused."""
    written = dict(zip(range(address, address + len(values)), values, strict=True))
    if 0 in written:
        state = state.with_setpoint(float(written[0]))
    if 2 in written:
        low, high = SETPOINT_RANGE
        state = state.with_setpoint(min(high, max(low, float(written[2]))))
    if 10 in written and 11 in written:
        (setpoint,) = struct.unpack(">f", struct.pack(">HH", written[10], written[11]))
        state = state.with_setpoint(round(setpoint, 3))
    elif 10 in written or 11 in written:
        raise ThermostatError("the float32 setpoint needs both registers 10 and 11")
    return state


class ModbusSimulator:
    """A thermostat on 127.0.0.1:`port`; `clock` is injectable so tests need no sleeps."""

    def __init__(
        self,
        port: int,
        device_id: int = 1,
        host: str = "127.0.0.1",
        state: Thermostat | None = None,
        clock: Callable[[], float] = time.monotonic,
        rtu: bool = False,
    ) -> None:
        self.host, self.port, self.device_id, self.rtu = host, port, device_id, rtu
        self.state = state or Thermostat()
        self.faults = Faults()
        self._clock = clock
        self._last = clock()
        self._server: ModbusTcpServer | None = None
        self.connections = 0  # client connections accepted so far

    def _on_connect(self, connected: bool) -> None:
        if connected:
            self.connections += 1
            log.info("client connected", extra={"port": self.port, "connections": self.connections})

    def _device(self) -> SimDevice:
        registers = [SimData(0, count=32, values=0, datatype=DataType.REGISTERS)]
        return SimDevice(
            id=self.device_id,
            simdata=(
                [SimData(0, count=16, values=False, datatype=DataType.BITS)],
                [SimData(0, count=16, values=False, datatype=DataType.BITS)],
                list(registers),
                list(registers),
            ),
            action=self._action,
        )

    def advance(self) -> Thermostat:
        """Bring the model to the clock's now."""
        now = self._clock()
        self.state = self.state.step(now - self._last)
        self._last = now
        return self.state

    async def _action(
        self,
        function_code: int,
        start: int,
        address: int,
        count: int,
        registers: list[int],
        values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if self.faults.delay:
            await asyncio.sleep(self.faults.delay)
        if self.faults.exception is not None:
            return self.faults.exception
        state = self.advance()
        try:
            if values is not None and function_code in _HOLDING:
                state = apply_holding_write(state, address, [int(v) for v in values])
            elif values is not None and function_code in _COILS and address == 0:
                state = state.with_power(bool(values[0]))
        except ThermostatError as exc:
            log.info("write refused: %s", exc, extra={"device": self.device_id})
            return ExcCodes.ILLEGAL_VALUE
        self.state = state
        if function_code in _HOLDING:
            contents = holding_registers(state)
        elif function_code in _INPUT:
            contents = input_registers(state)
        elif function_code in _COILS:
            contents = {0: int(state.power)}  # bit 0 of the first coil register
        else:
            contents = {}
        for register, value in contents.items():
            if 0 <= register - start < len(registers):
                registers[register - start] = value
        return None

    async def start(self) -> None:
        framer = FramerType.RTU if self.rtu else FramerType.SOCKET
        self._server = ModbusTcpServer(
            self._device(),
            address=(self.host, self.port),
            framer=framer,
            trace_connect=self._on_connect,
        )
        await self._server.serve_forever(background=True)
        log.info("modbus simulator listening", extra={"port": self.port})

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]  # pymodbus is untyped
            self._server = None


async def serve(port: int, device_id: int = 1, host: str = "127.0.0.1", rtu: bool = False) -> None:
    """Run one simulated thermostat until cancelled (Ctrl-C)."""
    simulator = ModbusSimulator(port, device_id=device_id, host=host, rtu=rtu)
    await simulator.start()
    try:
        await asyncio.Event().wait()
    finally:
        await simulator.stop()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=5020, help="TCP port (default 5020)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--device-id", type=int, default=1, help="Modbus unit id (default 1)")
    parser.add_argument(
        "--rtu",
        action="store_true",
        help="RTU framing on the TCP port (reach it as serialPort socket://host:port)",
    )


async def serve_from(args: argparse.Namespace) -> None:
    """`serve()` with the command line's settings (see `add_arguments`)."""
    await serve(args.port, args.device_id, args.host, args.rtu)


def main(argv: list[str] | None = None) -> int:
    return run_simulator("python -m simulators.modbus", __doc__, add_arguments, serve_from, argv)


if __name__ == "__main__":
    sys.exit(main())
