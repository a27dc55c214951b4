"""The BLE simulator through bumble's own central over a virtual link layer."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

import pytest
from bumble.controller import Controller
from bumble.core import UUID
from bumble.device import Device, Peer
from bumble.hci import Address
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

from simulators.bluetooth import (
    ADDRESS,
    BATTERY_UUID,
    POWER_UUID,
    SERIAL_UUID,
    SETPOINT_UUID,
    TEMPERATURE_UUID,
    BleSimulator,
)
from simulators.thermostat import Thermostat


@pytest.fixture
async def peer() -> AsyncIterator[tuple[Peer, BleSimulator]]:
    link = LocalLink()
    simulator = BleSimulator(link, state=Thermostat(temperature=19.5), clock=lambda: 0.0)
    await simulator.start()
    controller = Controller("central", link=link, public_address="F0:F0:F0:F0:F0:F0")
    central = Device(
        name="central",
        address=Address("F0:F0:F0:F0:F0:F0"),
        host=Host(controller, AsyncPipeSink(controller)),
    )
    await central.power_on()
    connection = await central.connect(Address(ADDRESS))
    remote = Peer(connection)
    await remote.discover_services()
    await remote.discover_characteristics()
    yield remote, simulator
    await connection.disconnect()
    await simulator.stop()


def characteristic(peer: Peer, uuid: str):
    [found] = peer.get_characteristics_by_uuid(UUID(uuid))
    return found


async def test_reads_when_connected_show_the_model(peer) -> None:
    remote, _ = peer
    assert struct.unpack("<h", await characteristic(remote, TEMPERATURE_UUID).read_value()) == (
        1950,
    )
    assert bytes(await characteristic(remote, BATTERY_UUID).read_value()) == bytes([87])
    assert bytes(await characteristic(remote, SERIAL_UUID).read_value()) == b"KEDGE-TH-0001"


async def test_writes_when_valid_reach_the_model_and_out_of_range_is_refused(peer) -> None:
    remote, simulator = peer
    await characteristic(remote, SETPOINT_UUID).write_value(
        struct.pack("<h", 2400), with_response=True
    )
    assert simulator.state.setpoint == 24.0
    await characteristic(remote, POWER_UUID).write_value(b"\x00", with_response=True)
    assert simulator.state.power is False
    with pytest.raises(Exception, match="OUT_OF_RANGE|0xFF|out of range"):  # noqa: B017
        await characteristic(remote, SETPOINT_UUID).write_value(
            struct.pack("<h", 9000), with_response=True
        )
    assert simulator.state.setpoint == 24.0


async def test_temperature_when_subscribed_is_notified(peer) -> None:
    remote, simulator = peer
    received: asyncio.Queue[bytes] = asyncio.Queue()
    await characteristic(remote, TEMPERATURE_UUID).subscribe(
        lambda value: received.put_nowait(bytes(value))
    )
    await simulator.notify()
    value = await asyncio.wait_for(received.get(), 5)
    assert struct.unpack("<h", value) == (1950,)


def test_simulator_process_when_dumped_by_bumble_tool_shows_gatt_database(tmp_path) -> None:
    """bumble's stock bumble-gatt-dump, as a central in another process, over HCI on TCP."""
    import subprocess
    import sys
    from pathlib import Path

    from harness.support import free_port, port_open, wait_for

    port = free_port()
    simulator = subprocess.Popen(
        [sys.executable, "-m", "kedge", "simulate", "bluetooth", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: port_open(port), timeout=30, what="HCI port")
        dump = subprocess.run(
            [
                str(Path(sys.executable).parent / "bumble-gatt-dump"),
                f"tcp-client:127.0.0.1:{port}",
                ADDRESS,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        out = dump.stdout.upper()
        assert "6E400000-6B65-6467-6500-000000000000" in out, dump.stdout + dump.stderr
        assert "2A6E" in out and "2A19" in out
    finally:
        simulator.terminate()
        simulator.wait(10)
