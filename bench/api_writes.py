"""cloudcore's CPU per API write: the official client (as cloudcore used it: a worker thread,
the answer not decoded) next to the lean path (`controllers.leanapi`), in the same run against
the same `kedge apiserver`.

Three writes cloudcore makes all the time: a Lease renewal (merge patch), a DeviceStatus report
(merge patch) and an Event (create). `--count` of each, `--concurrency` in flight (as many
writers share one process). CPU is this process's (all threads); the API server's own CPU per
write is given beside it (what a fleet's status writes cost on the server side).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil
from kubernetes import client

from controllers.apicall import write
from controllers.leanapi import LeanApi, path_of
from harness.apiserver import ApiServerProcess

G, V = "devices.kubeedge.io", "v1beta1"
Write = Callable[[int], Awaitable[None]]


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _status(i: int) -> dict[str, Any]:
    return {"status": {"twins": [{"propertyName": "temperature",
                                  "reported": {"value": str(i)}}]}}  # fmt: skip


def _event(i: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"generateName": "bench.", "namespace": "default"},
            "involvedObject": {"kind": "Device", "name": "bench", "namespace": "default"},
            "type": "Normal", "reason": "Bench", "message": f"event {i}"}  # fmt: skip


def official(api: client.ApiClient) -> dict[str, Write]:
    coordination, custom = client.CoordinationV1Api(api), client.CustomObjectsApi(api)
    core = client.CoreV1Api(api)

    async def lease(_i: int) -> None:
        body = {"spec": {"renewTime": _now()}}
        await asyncio.to_thread(write, coordination.patch_namespaced_lease, "bench",
                                "kube-node-lease", body)  # fmt: skip

    async def status(i: int) -> None:
        await asyncio.to_thread(write, custom.patch_namespaced_custom_object, G, V, "default",
                                "devicestatuses", "bench", _status(i))  # fmt: skip

    async def event(i: int) -> None:
        await asyncio.to_thread(write, core.create_namespaced_event, "default", _event(i))

    return {"lease": lease, "status": status, "event": event}


def lean_writes(lean: LeanApi) -> dict[str, Write]:
    leases = path_of("apis", "coordination.k8s.io", "v1", "namespaces", "kube-node-lease",
                     "leases", "bench")  # fmt: skip
    statuses = path_of("apis", G, V, "namespaces", "default", "devicestatuses", "bench")
    events = path_of("api", "v1", "namespaces", "default", "events")

    async def lease(_i: int) -> None:
        await lean.patch(leases, {"spec": {"renewTime": _now()}})

    async def status(i: int) -> None:
        await lean.patch(statuses, _status(i))

    async def event(i: int) -> None:
        await lean.create(events, _event(i))

    return {"lease": lease, "status": status, "event": event}


async def measure(writes: Write, count: int, concurrency: int, server: psutil.Process
                  ) -> tuple[float, float, float]:  # fmt: skip
    """(ms of CPU per write here, writes per second, ms of the API server's CPU per write)."""
    queue = iter(range(count))

    async def worker() -> None:
        for i in queue:
            await writes(i)

    cpu, wall, served = time.process_time(), time.monotonic(), _cpu(server)
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    return cpu / count * 1000, count / wall, (_cpu(server) - served) / count * 1000


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _objects(api: client.ApiClient) -> None:
    client.CoordinationV1Api(api).create_namespaced_lease("kube-node-lease", {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "bench", "namespace": "kube-node-lease"}, "spec": {}})  # fmt: skip
    status = {"apiVersion": f"{G}/{V}", "kind": "DeviceStatus",
              "metadata": {"name": "bench", "namespace": "default"}, "spec": {}}  # fmt: skip
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        G, V, "default", "devicestatuses", status
    )


async def run(apiserver: ApiServerProcess, count: int, concurrency: int) -> None:
    api = apiserver.api_client()
    api.configuration.connection_pool_maxsize = 32  # as cloudcore's
    _objects(api)
    lean = LeanApi(api.configuration)
    paths = {"official client": official(api), "lean path": lean_writes(lean)}
    assert apiserver.process is not None
    server = psutil.Process(apiserver.process.pid)
    results: dict[str, dict[str, tuple[float, float, float]]] = {}
    for name, writes in paths.items():
        for kind, one in writes.items():
            await measure(one, 50, concurrency, server)  # warm: connections, TLS sessions
            results.setdefault(kind, {})[name] = await measure(one, count, concurrency, server)
    await lean.close()
    print(
        f"| write ({count}, {concurrency} in flight) | official client: CPU ms/write "
        "| writes/s | lean path: CPU ms/write | writes/s | CPU ratio "
        "| API server CPU ms/write (lean path) |"
    )
    for kind, by in results.items():
        (o_cpu, o_rate, _), (l_cpu, l_rate, l_server) = by["official client"], by["lean path"]
        print(
            f"| {kind} | {o_cpu:.3f} | {o_rate:,.0f} | {l_cpu:.3f} | {l_rate:,.0f} "
            f"| {o_cpu / l_cpu:.1f}x | {l_server:.3f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        apiserver = ApiServerProcess(Path(tmp) / "apiserver").start()
        try:
            asyncio.run(run(apiserver, args.count, args.concurrency))
        finally:
            apiserver.stop()


if __name__ == "__main__":
    main()
