"""cloudcore's CPU per API write: the official client (as cloudcore used it: a worker thread,
the answer not decoded) next to the lean path (`controllers.leanapi`), in the same run against
the same `kedge apiserver`.

Three writes cloudcore makes all the time: a Lease renewal (merge patch), a DeviceStatus report
(merge patch) and an Event (create). `--count` of each, `--concurrency` in flight (as many
writers share one process), against a store already holding `--objects` DeviceStatuses, each
owned by its Device as cloudcore makes them (a fleet's store is not empty). CPU is this
process's (all threads); the API server's own CPU per write is given beside it (what a fleet's
status writes cost on the server side).
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

from cloudcore.apiserver.store import Store
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


def _owned_status(name: str) -> dict[str, Any]:
    owner = {"apiVersion": f"{G}/{V}", "kind": "Device", "name": name, "uid": f"uid-{name}",
             "controller": True, "blockOwnerDeletion": True}  # fmt: skip
    return {
        "apiVersion": f"{G}/{V}",
        "kind": "DeviceStatus",
        "spec": {},
        "metadata": {"name": name, "namespace": "default", "ownerReferences": [owner]},
    }


def seed(state: Path, objects: int) -> None:
    """`objects` DeviceStatuses written into the API server's store before it starts."""
    state.mkdir(parents=True, exist_ok=True)
    store = Store(f"sqlite:///{state / 'apiserver.db'}")
    for i in range(objects):
        store.write(f"{G}/devicestatuses", "default", f"d{i}", _owned_status(f"d{i}"), None,
                    create=True)  # fmt: skip
    store.close()


def _objects(api: client.ApiClient) -> None:
    client.CoordinationV1Api(api).create_namespaced_lease("kube-node-lease", {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "bench", "namespace": "kube-node-lease"}, "spec": {}})  # fmt: skip
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        G, V, "default", "devicestatuses", _owned_status("bench")
    )


async def run(apiserver: ApiServerProcess, count: int, concurrency: int, objects: int) -> None:
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
        f"| write ({count}, {concurrency} in flight, {objects:,} stored) "
        "| official client: CPU ms/write | writes/s | lean path: CPU ms/write | writes/s "
        "| CPU ratio | API server CPU ms/write (lean path) |"
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
    parser.add_argument("--objects", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        seed(Path(tmp) / "apiserver", args.objects)
        apiserver = ApiServerProcess(Path(tmp) / "apiserver").start()
        try:
            asyncio.run(run(apiserver, args.count, args.concurrency, args.objects))
        finally:
            apiserver.stop()


if __name__ == "__main__":
    main()
