"""Cloud and edge joined for benchmarks: `kedge apiserver`, `kedge cloudcore`, mosquitto and an
edgecore joined with a token, plus the Modbus simulator and mapper when asked for."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.harness import modbus_manifest, module_process
from harness.apiserver import ApiServerProcess
from harness.cloud import CloudProcess
from harness.support import EdgeProcess, Mosquitto, free_port, port_open, wait_for

NODE = "edge-node-1"


@dataclass
class CloudSystem:
    cloud: CloudProcess
    edge: EdgeProcess
    broker: Mosquitto
    manifest: Path  # DeviceModel + Devices for NODE (Modbus, on the simulator's port)


@contextlib.contextmanager
def cloud_system(
    devices: int = 1,
    cloudcore_flags: tuple[str, ...] = (),
    mapper: bool = True,
    edge_flags: tuple[str, ...] = (),
) -> Iterator[CloudSystem]:
    """Everything running; the manifest is written but not applied (the benchmark does that)."""
    with tempfile.TemporaryDirectory(prefix="kedge-bench-") as tmp:
        workdir = Path(tmp)
        port = free_port()
        manifest = modbus_manifest(workdir / "modbus.yaml", devices, NODE, port)
        apiserver = ApiServerProcess(workdir / "apiserver").start()
        cloud = CloudProcess(apiserver, workdir / "cloudcore", extra=cloudcore_flags)
        broker = Mosquitto(workdir).start()
        edge = cloud.start().edge(workdir / "edge", broker.url)
        edge.extra += list(edge_flags)
        try:
            with contextlib.ExitStack() as stack:
                if mapper:
                    stack.enter_context(module_process("simulators.modbus", "--port", str(port)))
                    wait_for(lambda: port_open(port), what="simulator")
                edge.start()
                if mapper:
                    stack.enter_context(
                        module_process("mappers.modbus", "--node", NODE, "--mqtt", broker.url)
                    )
                yield CloudSystem(cloud, edge, broker, manifest)
        finally:
            edge.stop()
            broker.stop()
            cloud.stop()
            apiserver.stop()
