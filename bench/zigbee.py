"""ZigBee: ZCL attribute reads/s through the mapper's driver vs bare zigpy calls, and desired over
HTTP -> device -> reported over HTTP (p50/p99), all against one simulator process.

The simulator emulates an XBee radio over TCP; both loops drive stock zigpy-xbee through it.
The radio has one serial line, so the phases take turns on it: bare zigpy (joins the devices,
then reads and write+read round trips), the driver, then edgecore + the mapper process.
Target: driver/bare >= 0.8.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import zigpy.types as t
from zigpy_xbee.zigbee.application import ControllerApplication

from bench.harness import module_process, percentile, sample_system, setpoint_latency, summary
from devicetwin.memberspec import PropertyConfig
from harness.support import free_port, port_open, wait_for
from mappers.zigbee.driver import ZigbeeDriver
from mappers.zigbee.network import NetworkPool
from simulators.zigbee import THERMOSTAT_IEEE

TEMPERATURE = PropertyConfig(
    "temperature",
    "float",
    "ReadOnly",
    {"cluster": "temperature", "attribute": "measured_value", "scale": 0.01},
)
DEVICE = "default/zigbee-thermostat-1"


def radio(port: int, database: Path) -> dict[str, Any]:
    return {"radio": "xbee", "path": f"socket://127.0.0.1:{port}", "database": str(database)}


async def bare(port: int, database: Path, seconds: float, writes: int) -> tuple[float, list[float]]:
    config = radio(port, database)
    app = await ControllerApplication.new(
        {"device": {"path": config["path"]}, "database_path": config["database"],
         "topology_scan_enabled": False, "ota": {"enabled": False}},
        auto_form=True,
    )  # fmt: skip
    try:
        await app.permit(60)
        ieee = t.EUI64.convert(THERMOSTAT_IEEE)
        deadline = time.monotonic() + 30
        while not (ieee in app.devices and app.devices[ieee].is_initialized):
            if time.monotonic() > deadline:
                raise TimeoutError("the thermostat did not join")
            await asyncio.sleep(0.01)  # polling the interview's progress
        endpoint = app.devices[ieee].endpoints[1]
        temperature, thermostat = endpoint.in_clusters[0x0402], endpoint.in_clusters[0x0201]
        count, end = 0, time.perf_counter() + seconds
        while time.perf_counter() < end:
            await temperature.read_attributes(["measured_value"], allow_cache=False)
            count += 1
        trips = []
        for i in range(writes):
            start = time.perf_counter()
            await thermostat.write_attributes({"occupied_heating_setpoint": 2200 + 100 * (i % 2)})
            await thermostat.read_attributes(["occupied_heating_setpoint"], allow_cache=False)
            trips.append((time.perf_counter() - start) * 1000)
        return count / seconds, trips
    finally:
        await app.shutdown()


async def through_driver(port: int, database: Path, seconds: float) -> float:
    driver = ZigbeeDriver({**radio(port, database), "ieee": THERMOSTAT_IEEE}, NetworkPool())
    try:
        await driver.read(TEMPERATURE)  # start the radio outside the timed part
        count, end = 0, time.perf_counter() + seconds
        while time.perf_counter() < end:
            await driver.read(TEMPERATURE)
            count += 1
        return count / seconds
    finally:
        await driver.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--count", type=int, default=300, help="desired writes timed")
    args = parser.parse_args()
    port = free_port()
    with (
        tempfile.TemporaryDirectory(prefix="kedge-bench-") as tmp,
        module_process("simulators.zigbee", "--port", str(port)),
    ):
        wait_for(lambda: port_open(port), what="simulator")
        database = Path(tmp) / "zigbee.db"
        raw, bare_trips = asyncio.run(bare(port, database, args.seconds, args.count))
        driver = asyncio.run(through_driver(port, database, args.seconds))
        # the mapper shares the network database: the devices joined in the first phase
        path = 'path: "socket://127.0.0.1:19003"'
        ours = f'path: "socket://127.0.0.1:{port}"\n      database: "{database}"'
        with sample_system("zigbee.yaml", (path, ours)) as edge:
            measured = setpoint_latency(edge, DEVICE, args.count)
    p99 = percentile(measured, 99)
    print(f"ZCL attribute reads over an emulated XBee radio, {args.seconds:.0f} s each")
    print(f"  bare zigpy read_attributes loop: {raw:,.0f} reads/s")
    print(f"  mapper driver:                   {driver:,.0f} reads/s ({driver / raw:.2f} of bare)")
    print(f"  target ratio >= 0.8: {'MET' if driver / raw >= 0.8 else 'NOT MET'}")
    print(f"desired setpoint over HTTP -> ZCL write -> reported over HTTP, {args.count} writes")
    print(f"  bare zigpy write+read:     {summary(bare_trips)}")
    print(f"  through edge and mapper:   {summary(measured)}")
    print(f"  p99 {p99:.1f} ms")


if __name__ == "__main__":
    main()
