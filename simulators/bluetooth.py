"""Bluetooth LE thermostat simulator: a bumble peripheral on a virtual controller link.

GATT database (little-endian values, as Bluetooth SIG characteristics):

    service 6e400000-6b65-6467-6500-000000000000   kedge thermostat
      2a6e  Temperature   sint16, 0.01 degC    read, notify
      6e400001-...        Setpoint  sint16, 0.01 degC    read, write (5..35, else Out Of Range)
      6e400002-...        Power     uint8 0/1            read, write
    service 180f  Battery: 2a19 Battery Level uint8 %   read
    service 180a  Device Information: 2a25 Serial Number string   read

`serve()` puts the peripheral's controller and a second controller on one bumble LocalLink and
exposes the second as HCI over TCP on loopback, so a central in another process (bleak through
kedge's bumble backend, or bumble's own tools) reaches the peripheral over a real BLE link
layer. Every TICK the model advances and temperature subscribers are notified.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import struct
import sys
import time
from collections.abc import Callable
from typing import Any

from bumble.att import ATT_Error, AttributeValue, ErrorCode
from bumble.controller import Controller
from bumble.core import UUID, AdvertisingData
from bumble.device import Connection, Device
from bumble.gatt import Characteristic, Service
from bumble.hci import Address
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport import open_transport
from bumble.transport.common import AsyncPipeSink

from simulators.cli import run_simulator
from simulators.thermostat import Thermostat, ThermostatError

log = logging.getLogger("kedge.simulator.bluetooth")
SERVICE_UUID = "6e400000-6b65-6467-6500-000000000000"
TEMPERATURE_UUID = "00002a6e-0000-1000-8000-00805f9b34fb"
SETPOINT_UUID = "6e400001-6b65-6467-6500-000000000000"
POWER_UUID = "6e400002-6b65-6467-6500-000000000000"
BATTERY_UUID = "00002a19-0000-1000-8000-00805f9b34fb"
SERIAL_UUID = "00002a25-0000-1000-8000-00805f9b34fb"
ADDRESS = "F1:F1:F1:F1:F1:F1"
TICK = 0.5
BATTERY_LEVEL = 87

_READ = Characteristic.Properties.READ
_WRITE = Characteristic.Properties.WRITE
_NOTIFY = Characteristic.Properties.NOTIFY
_READABLE = Characteristic.READABLE
_WRITEABLE = Characteristic.WRITEABLE


def _centi(value: float) -> bytes:
    return struct.pack("<h", round(value * 100))


class BleSimulator:
    """The thermostat as a BLE peripheral on `link`; `clock` is injectable for tests."""

    def __init__(
        self,
        link: LocalLink,
        address: str = ADDRESS,
        name: str = "kedge-thermostat",
        state: Thermostat | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.link, self.address, self.name = link, address, name
        self.state = state or Thermostat()
        self._clock = clock
        self._last = clock()
        self._device: Device | None = None
        self._temperature: Characteristic[bytes] | None = None
        self._task: asyncio.Task[None] | None = None
        self.device_failure = False  # every read and write answers an ATT error while set
        self.links = 0  # connections from centrals so far (a test can tell a reconnect)

    def _on_connection(self, connection: Connection) -> None:
        self.links += 1
        log.info("central connected", extra={"peer": str(connection.peer_address),
                                             "links": self.links})  # fmt: skip

    def advance(self) -> Thermostat:
        now = self._clock()
        self.state = self.state.step(now - self._last)
        self._last = now
        return self.state

    def _healthy(self) -> None:
        if self.device_failure:
            raise ATT_Error(ErrorCode.UNLIKELY_ERROR)

    def _write_setpoint(self, _connection: Connection, value: bytes) -> None:
        self._healthy()
        if len(value) != 2:
            raise ATT_Error(ErrorCode.INVALID_ATTRIBUTE_LENGTH)
        try:
            self.state = self.advance().with_setpoint(struct.unpack("<h", value)[0] / 100)
        except ThermostatError as exc:
            log.info("setpoint refused: %s", exc)
            raise ATT_Error(ErrorCode.OUT_OF_RANGE) from exc

    def _write_power(self, _connection: Connection, value: bytes) -> None:
        self._healthy()
        if len(value) != 1 or value[0] > 1:
            raise ATT_Error(ErrorCode.VALUE_NOT_ALLOWED)
        self.state = self.advance().with_power(bool(value[0]))

    def _services(self) -> list[Service]:
        def read(get: Callable[[], bytes]) -> AttributeValue[bytes]:
            def checked(_connection: Connection) -> bytes:
                self._healthy()
                return get()

            return AttributeValue(read=checked)

        self._temperature = Characteristic(
            TEMPERATURE_UUID,
            _READ | _NOTIFY,
            _READABLE,
            read(lambda: _centi(self.advance().temperature)),
        )
        thermostat = Service(
            SERVICE_UUID,
            [
                self._temperature,
                Characteristic(
                    SETPOINT_UUID,
                    _READ | _WRITE,
                    _READABLE | _WRITEABLE,
                    AttributeValue(
                        read=read(lambda: _centi(self.state.setpoint)).read,
                        write=self._write_setpoint,
                    ),
                ),
                Characteristic(
                    POWER_UUID,
                    _READ | _WRITE,
                    _READABLE | _WRITEABLE,
                    AttributeValue(
                        read=read(lambda: bytes([int(self.state.power)])).read,
                        write=self._write_power,
                    ),
                ),
            ],
        )
        battery = Service(
            "180F",
            [Characteristic(BATTERY_UUID, _READ, _READABLE, read(lambda: bytes([BATTERY_LEVEL])))],
        )
        info = Service(
            "180A",
            [Characteristic(SERIAL_UUID, _READ, _READABLE, read(self.state.serial.encode))],
        )
        return [thermostat, battery, info]

    async def start(self) -> None:
        controller = Controller("peripheral", link=self.link, public_address=self.address)
        device = Device(
            name=self.name,
            address=Address(self.address),
            host=Host(controller, AsyncPipeSink(controller)),
        )
        for service in self._services():
            device.add_service(service)
        device.on("connection", self._on_connection)
        device.advertising_data = bytes(
            AdvertisingData(
                [
                    (AdvertisingData.COMPLETE_LOCAL_NAME, self.name.encode()),
                    (
                        AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
                        bytes(UUID(SERVICE_UUID)),
                    ),
                ]
            )
        )
        await device.power_on()
        await device.start_advertising(auto_restart=True, advertising_interval_min=20)
        self._device = device
        self._task = asyncio.create_task(self._notify_forever(), name="ble simulator tick")
        log.info("bluetooth simulator advertising", extra={"address": self.address})

    async def vanish(self) -> None:
        """The peripheral goes away (out of range, battery out): links drop, no advertising."""
        if self._device is None:
            return
        await self._device.stop_advertising()
        for connection in list(self._device.connections.values()):
            with contextlib.suppress(Exception):  # the link may be half gone already
                await connection.disconnect()

    async def reappear(self) -> None:
        if self._device is not None:
            await self._device.start_advertising(auto_restart=True, advertising_interval_min=20)

    async def notify(self) -> None:
        """Send the current temperature to every subscriber."""
        if self._device is not None and self._temperature is not None:
            await self._device.notify_subscribers(self._temperature)

    async def _notify_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK)  # the device's own update rate
            await self.notify()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._device is not None:
            await self._device.power_off()
            self._device = None


class HciServer:
    """The peripheral plus a controller for the central, as HCI over TCP on `host:port`.

    bumble's tcp-server takes the first connection as its HCI host, so callers in the same
    process start it and then connect, instead of probing the port.
    """

    def __init__(self, port: int, host: str = "127.0.0.1", **simulator: Any) -> None:
        self.port, self.host = port, host
        self.link = LocalLink()  # type: ignore[no-untyped-call]  # bumble is partly untyped
        self.simulator = BleSimulator(self.link, **simulator)
        self._transport: Any = None

    @property
    def transport(self) -> str:
        """What the central (kedge's bleak backend: `hci`) opens."""
        return f"tcp-client:{self.host}:{self.port}"

    async def start(self) -> None:
        await self.simulator.start()
        self._transport = await open_transport(f"tcp-server:{self.host}:{self.port}")
        Controller(
            "central",
            host_source=self._transport.source,
            host_sink=self._transport.sink,
            link=self.link,
        )
        log.info("HCI for the central on tcp-server %s:%d", self.host, self.port)

    async def stop(self) -> None:
        await self.simulator.stop()
        transport, self._transport = self._transport, None
        if transport is None:
            return
        await transport.close()
        # bumble's close() leaves the listening socket and the accepted connection open
        connection = getattr(transport.sink, "transport", None)
        if connection is not None:
            connection.close()
        server = getattr(transport, "server", None)
        if server is not None:
            server.close()
            await server.wait_closed()


async def serve(port: int, host: str = "127.0.0.1") -> None:
    """Run an HciServer until cancelled."""
    server = HciServer(port, host)
    await server.start()
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=19002, help="HCI over TCP port (19002)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")


async def serve_from(args: argparse.Namespace) -> None:
    """`serve()` with the command line's settings (see `add_arguments`)."""
    await serve(args.port, args.host)


def main(argv: list[str] | None = None) -> int:
    return run_simulator("python -m simulators.bluetooth", __doc__, add_arguments, serve_from, argv)


if __name__ == "__main__":
    sys.exit(main())
