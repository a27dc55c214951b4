"""The BLE driver (bleak + kedge's bumble backend) against the BLE simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from devicetwin.memberspec import PropertyConfig
from harness.support import free_port
from mappers.bluetooth.bumble_backend import close_centrals
from mappers.bluetooth.driver import BluetoothDriver
from mappers.driver import DeviceRejected, DeviceUnreachable, VisitorError
from simulators import bluetooth
from simulators.bluetooth import (
    ADDRESS,
    BATTERY_UUID,
    SERIAL_UUID,
    SETPOINT_UUID,
    TEMPERATURE_UUID,
)

TEMPERATURE = PropertyConfig(
    "temperature",
    "float",
    "ReadOnly",
    {"characteristicUUID": TEMPERATURE_UUID, "format": "<h", "scale": 0.01, "subscribe": True},
)
SETPOINT = PropertyConfig(
    "setpoint",
    "float",
    "ReadWrite",
    {"characteristicUUID": SETPOINT_UUID, "format": "<h", "scale": 0.01},
)
BATTERY = PropertyConfig(
    "battery", "int", "ReadOnly", {"characteristicUUID": BATTERY_UUID, "format": "B"}
)
SERIAL = PropertyConfig("serial", "string", "ReadOnly", {"characteristicUUID": SERIAL_UUID})


@pytest.fixture
async def hci() -> AsyncIterator[str]:
    server = bluetooth.HciServer(free_port())
    await server.start()
    yield server.transport
    await close_centrals()
    await server.stop()


@pytest.fixture
async def driver(hci: str) -> AsyncIterator[BluetoothDriver]:
    ble = BluetoothDriver({"macAddress": ADDRESS, "hci": hci, "scanTimeout": 2})
    yield ble
    await ble.close()


async def test_read_when_typed_visitors_gives_twin_text(driver) -> None:
    assert 18.0 <= float(await driver.read(TEMPERATURE)) <= 22.0
    assert await driver.read(BATTERY) == "87"
    assert await driver.read(SERIAL) == "KEDGE-TH-0001"


async def test_write_when_valid_reaches_device_and_reads_back(driver) -> None:
    await driver.write(SETPOINT, "24.5")
    assert await driver.read(SETPOINT) == "24.5"


async def test_write_when_device_refuses_is_rejected(driver) -> None:
    with pytest.raises(DeviceRejected):
        await driver.write(SETPOINT, "90")
    assert await driver.read(SETPOINT) == "21"


async def test_subscribe_when_device_notifies_delivers_values(driver) -> None:
    values: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    await driver.subscribe([TEMPERATURE], lambda name, value: values.put_nowait((name, value)))
    name, value = await asyncio.wait_for(values.get(), 5)
    assert name == "temperature" and 18.0 <= float(value) <= 22.0


async def test_unknown_characteristic_when_read_is_a_visitor_error(driver) -> None:
    missing = PropertyConfig(
        "x", "int", "ReadOnly", {"characteristicUUID": "0000ffff-0000-1000-8000-00805f9b34fb"}
    )
    with pytest.raises(VisitorError, match="no characteristic"):
        await driver.read(missing)


async def test_absent_device_when_read_is_unreachable(hci: str) -> None:
    absent = BluetoothDriver({"name": "nobody", "hci": hci, "scanTimeout": 0.5})
    with pytest.raises(DeviceUnreachable, match="no device with name 'nobody'"):
        await absent.read(BATTERY)


@pytest.mark.parametrize(
    ("config", "fragment"),
    [({}, "macAddress or name"), ({"name": "x", "scanTimeout": 0}, "positive")],
)
def test_driver_when_config_invalid_says_why(config, fragment) -> None:
    with pytest.raises(VisitorError, match=fragment):
        BluetoothDriver(config)


async def test_transport_death_when_simulator_restarts_recovers_without_new_driver() -> None:
    server = bluetooth.HciServer(free_port())
    await server.start()
    driver = BluetoothDriver(
        {"macAddress": ADDRESS, "hci": server.transport, "scanTimeout": 2, "timeout": 2}
    )
    try:
        assert await driver.read(BATTERY) == "87"
        await server.stop()
        with pytest.raises(DeviceUnreachable):
            await driver.read(BATTERY)
        server = bluetooth.HciServer(server.port)
        await server.start()
        assert await driver.read(BATTERY) == "87"
    finally:
        await driver.close()
        await close_centrals()
        await server.stop()
