"""Desired write over HTTP -> value in the simulator -> reported back over HTTP (p50/p99).

Each write alternates the setpoint; the clock stops when the edge API shows that value as
reported, i.e. the mapper got the delta, wrote the register, read it back and reported it.
Baseline in the same run: a bare pymodbus write + read round trip on the same simulator.
Target: p99 < 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from pymodbus.client import AsyncModbusTcpClient

from bench.harness import modbus_system, percentile, setpoint_latency, summary

DEVICE = "default/modbus-000"


async def bare_round_trips(port: int, count: int) -> list[float]:
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
    await client.connect()
    samples = []
    for i in range(count):
        start = time.perf_counter()
        await client.write_register(0, 20 + i % 2, device_id=1)
        await client.read_holding_registers(0, count=1, device_id=1)
        samples.append((time.perf_counter() - start) * 1000)
    client.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=500)
    args = parser.parse_args()
    with modbus_system(1) as (edge, _mapper, port):
        bare = asyncio.run(bare_round_trips(port, args.count))
        measured = setpoint_latency(edge, DEVICE, args.count)
    p99 = percentile(measured, 99)
    print(f"desired over HTTP -> Modbus register -> reported over HTTP, {args.count} writes")
    print(f"  bare pymodbus write+read:  {summary(bare)}")
    print(f"  through edge and mapper:   {summary(measured)}")
    print(f"  target p99 < 50 ms: {'MET' if p99 < 50 else 'NOT MET'}")


if __name__ == "__main__":
    main()
