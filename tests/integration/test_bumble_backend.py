"""bleak's public API through kedge's bumble backend, against the BLE simulator."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakDeviceNotFoundError

from harness.support import free_port
from mappers.bluetooth.bumble_backend import bumble_backend, close_centrals
from simulators import bluetooth
from simulators.bluetooth import ADDRESS, SERVICE_UUID, SETPOINT_UUID, TEMPERATURE_UUID


@pytest.fixture
async def backend() -> AsyncIterator[tuple[type, type]]:
    server = bluetooth.HciServer(free_port())
    await server.start()
    yield bumble_backend(server.transport)
    await close_centrals()
    await server.stop()


async def test_scan_finds_the_thermostat_by_service_and_address(backend) -> None:
    scanner_cls, _ = backend
    found = await BleakScanner.discover(
        timeout=1.0, return_adv=True, service_uuids=[SERVICE_UUID], backend=scanner_cls
    )
    assert ADDRESS in found
    device, adv = found[ADDRESS]
    assert adv.local_name == "kedge-thermostat" and SERVICE_UUID in adv.service_uuids
    by_address = await BleakScanner.find_device_by_address(ADDRESS, timeout=2, backend=scanner_cls)
    assert by_address is not None


async def test_read_write_and_notify_through_bleak_client(backend) -> None:
    scanner_cls, client_cls = backend
    device = await BleakScanner.find_device_by_address(ADDRESS, timeout=2, backend=scanner_cls)
    assert device is not None
    async with BleakClient(device, backend=client_cls) as client:
        assert client.services.get_characteristic(TEMPERATURE_UUID) is not None
        temperature = struct.unpack("<h", await client.read_gatt_char(TEMPERATURE_UUID))[0]
        assert 1000 < temperature < 4000
        await client.write_gatt_char(SETPOINT_UUID, struct.pack("<h", 2450), response=True)
        assert struct.unpack("<h", await client.read_gatt_char(SETPOINT_UUID)) == (2450,)
        received: asyncio.Queue[bytearray] = asyncio.Queue()
        await client.start_notify(TEMPERATURE_UUID, lambda _c, data: received.put_nowait(data))
        assert len(await asyncio.wait_for(received.get(), 5)) == 2
        await client.stop_notify(TEMPERATURE_UUID)


async def test_absent_device_when_connected_is_not_found(backend) -> None:
    _, client_cls = backend
    with pytest.raises(BleakDeviceNotFoundError):
        async with BleakClient("F2:F2:F2:F2:F2:F2", backend=client_cls, timeout=1):
            pass
