"""GATT reads/s through the BLE mapper's driver vs bare bleak calls, same simulator, same run.

The simulator (a bumble peripheral) runs in its own process; this process's bumble central
reaches it over HCI on TCP through kedge's bleak backend. Target: driver/bare >= 0.8.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from bleak import BleakClient, BleakScanner

from bench.harness import module_process
from devicetwin.memberspec import PropertyConfig
from harness.support import free_port
from mappers.bluetooth.bumble_backend import bumble_backend, close_centrals
from mappers.bluetooth.driver import BluetoothDriver
from simulators.bluetooth import ADDRESS, TEMPERATURE_UUID

TEMPERATURE = PropertyConfig(
    "temperature",
    "float",
    "ReadOnly",
    {"characteristicUUID": TEMPERATURE_UUID, "format": "<h", "scale": 0.01},
)


async def bare(transport: str, seconds: float) -> float:
    scanner, client_backend = bumble_backend(transport)
    device = await BleakScanner.find_device_by_address(ADDRESS, timeout=10, backend=scanner)
    assert device is not None, "simulator not found"
    async with BleakClient(device, backend=client_backend) as client:
        count, end = 0, time.perf_counter() + seconds
        while time.perf_counter() < end:
            await client.read_gatt_char(TEMPERATURE_UUID)
            count += 1
    return count / seconds


async def through_driver(transport: str, seconds: float) -> float:
    driver = BluetoothDriver({"macAddress": ADDRESS, "hci": transport})
    await driver.read(TEMPERATURE)  # connect outside the timed part, as the bare loop does
    count, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        await driver.read(TEMPERATURE)
        count += 1
    await driver.close()
    return count / seconds


async def warm_up(transport: str) -> None:
    """The first connection doubles as the wait for the simulator to listen (no probing:
    bumble's tcp-server takes its first connection as the HCI host)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            await bare(transport, 1.0)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await close_centrals()
            await asyncio.sleep(0.1)  # retry pacing while the simulator starts


async def run(transport: str, seconds: float) -> tuple[float, float]:
    try:
        await warm_up(transport)
        return await bare(transport, seconds), await through_driver(transport, seconds)
    finally:
        await close_centrals()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    port = free_port()
    with module_process("simulators.bluetooth", "--port", str(port)):
        raw, driver = asyncio.run(run(f"tcp-client:127.0.0.1:{port}", args.seconds))
    print(
        f"GATT reads, {args.seconds:.0f} s each, one characteristic, simulator in its own process"
    )
    print(f"  bare bleak read_gatt_char loop: {raw:,.0f} reads/s")
    print(f"  mapper driver:                  {driver:,.0f} reads/s ({driver / raw:.2f} of bare)")
    print(f"  target ratio >= 0.8: {'MET' if driver / raw >= 0.8 else 'NOT MET'}")


if __name__ == "__main__":
    main()
