"""Modbus reads/s through the mapper's driver vs a bare pymodbus client loop, same simulator.

Both loops read the temperature (one input register) sequentially for the same time from a
simulator running in its own process; the driver adds the endpoint lock, the visitor's register
spec and the KubeEdge decoding. Target: driver/bare >= 0.8.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from pymodbus.client import AsyncModbusTcpClient

from bench.harness import module_process
from devicetwin.memberspec import PropertyConfig
from harness.support import free_port, port_open, wait_for
from mappers.modbus.driver import EndpointPool, ModbusDriver

TEMPERATURE = PropertyConfig(
    "temperature",
    "float",
    "ReadOnly",
    {"register": "InputRegister", "offset": 0, "limit": 1, "scale": 0.1},
)


async def bare(port: int, seconds: float) -> float:
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
    await client.connect()
    count, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        reply = await client.read_input_registers(0, count=1, device_id=1)
        assert not reply.isError()
        count += 1
    client.close()
    return count / seconds


async def through_driver(port: int, seconds: float) -> float:
    pool = EndpointPool()
    driver = ModbusDriver({"ip": "127.0.0.1", "port": port, "slaveID": 1}, pool)
    count, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        await driver.read(TEMPERATURE)
        count += 1
    await driver.close()
    return count / seconds


async def run(port: int, seconds: float) -> tuple[float, float]:
    await bare(port, 1.0)  # warm-up
    raw = await bare(port, seconds)
    driver = await through_driver(port, seconds)
    return raw, driver


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    port = free_port()
    with module_process("simulators.modbus", "--port", str(port)):
        wait_for(lambda: port_open(port), what="simulator")
        raw, driver = asyncio.run(run(port, args.seconds))
    print(
        f"modbus reads, {args.seconds:.0f} s each, one input register, simulator in its own process"
    )
    print(f"  bare pymodbus loop:   {raw:,.0f} reads/s")
    print(f"  mapper driver:        {driver:,.0f} reads/s ({driver / raw:.2f} of bare)")
    print(f"  target ratio >= 0.8: {'MET' if driver / raw >= 0.8 else 'NOT MET'}")


if __name__ == "__main__":
    main()
