"""Bluetooth LE: desired setpoint over HTTP -> GATT write -> reported over HTTP (p50/p99).

The simulator (a bumble peripheral) runs in its own process; edgecore and the Bluetooth mapper
process use the sample manifest. Baseline in the same run: bare bleak write + read round trips
through kedge's bleak backend on the same simulator (the link is free again before the mapper
starts).
"""

from __future__ import annotations

import argparse
import asyncio
import struct
import time

from bleak import BleakClient, BleakScanner

from bench.ble_reads import warm_up
from bench.harness import module_process, percentile, sample_system, setpoint_latency, summary
from harness.support import free_port
from mappers.bluetooth.bumble_backend import bumble_backend, close_centrals
from simulators.bluetooth import ADDRESS, SETPOINT_UUID

DEVICE = "default/ble-thermostat-1"


async def bare_round_trips(transport: str, count: int) -> list[float]:
    try:
        await warm_up(transport)
        scanner, client_backend = bumble_backend(transport)
        device = await BleakScanner.find_device_by_address(ADDRESS, timeout=10, backend=scanner)
        assert device is not None, "simulator not found"
        trips = []
        async with BleakClient(device, backend=client_backend) as client:
            for i in range(count):
                start = time.perf_counter()
                value = struct.pack("<h", 2200 + 100 * (i % 2))
                await client.write_gatt_char(SETPOINT_UUID, value, response=True)
                await client.read_gatt_char(SETPOINT_UUID)
                trips.append((time.perf_counter() - start) * 1000)
        return trips
    finally:
        await close_centrals()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=300)
    args = parser.parse_args()
    port = free_port()
    with module_process("simulators.bluetooth", "--port", str(port)):
        bare = asyncio.run(bare_round_trips(f"tcp-client:127.0.0.1:{port}", args.count))
        with sample_system("bluetooth.yaml", (":19002", f":{port}")) as edge:
            measured = setpoint_latency(edge, DEVICE, args.count)
    p99 = percentile(measured, 99)
    print(f"desired setpoint over HTTP -> GATT write -> reported over HTTP, {args.count} writes")
    print(f"  bare bleak write+read:     {summary(bare)}")
    print(f"  through edge and mapper:   {summary(measured)}")
    print(f"  p99 {p99:.1f} ms")


if __name__ == "__main__":
    main()
