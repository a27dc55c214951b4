"""Embedded API server: Device creates/s, list latency at 10,000 devices, watch delivery latency
to 100 watchers, and resident memory with 100,000 stored objects.

Everything goes over HTTPS with the bearer token, as kubectl and the Python client talk to it.
Baseline in the same run: GET /version over the same connections (TLS, HTTP and routing, no
storage), so the ratio shows what storage and Kubernetes semantics cost.
Targets: >= 1,000 creates/s; watch p99 < 50 ms with 100 watchers.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import multiprocessing
import ssl
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil

from bench.harness import percentile, summary
from harness.apiserver import ApiServerProcess

DEVICES = "/apis/devices.kubeedge.io/v1beta1/namespaces/default/devices"
LOADERS = 4  # load processes, one keep-alive connection each


def device(n: int) -> dict[str, Any]:
    return {
        "apiVersion": "devices.kubeedge.io/v1beta1",
        "kind": "Device",
        "metadata": {"name": f"dev-{n:06d}", "labels": {"bench": "yes"}},
        "spec": {
            "nodeName": f"node-{n % 100}",
            "deviceModelRef": {"name": "bench-model"},
            "protocol": {"protocolName": "modbus", "configData": {"ip": "127.0.0.1", "port": 5020}},
            "properties": [{"name": "setpoint", "desired": {"value": "21"}}],
        },
    }


def client(server: ApiServerProcess, **more: Any) -> httpx.AsyncClient:
    context = ssl.create_default_context(cafile=str(server.state / "pki" / "ca.crt"))
    return httpx.AsyncClient(
        base_url=server.url,
        headers={"Authorization": f"Bearer {server.token()}"},
        verify=context,
        **more,
    )


@dataclass(frozen=True)
class Load:
    port: int
    ca: str
    token: str
    path: str
    first: int
    count: int


def _load(load: Load) -> None:
    """One load process: sequential requests on one keep-alive HTTPS connection."""
    context = ssl.create_default_context(cafile=load.ca)
    conn = http.client.HTTPSConnection("127.0.0.1", load.port, context=context)
    headers = {"Authorization": f"Bearer {load.token}", "Content-Type": "application/json"}
    for n in range(load.first, load.first + load.count):
        if load.path == "/version":
            conn.request("GET", load.path, headers=headers)
        else:
            conn.request("POST", load.path, body=orjson.dumps(device(n)), headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status >= 300:
            raise RuntimeError(f"{load.path}: HTTP {response.status}")
    conn.close()


def rate(server: ApiServerProcess, path: str, first: int, count: int) -> float:
    """Requests/s from LOADERS processes (an asyncio client in Python is slower than the server)."""
    share = count // LOADERS
    loads = [
        Load(server.port, str(server.state / "pki" / "ca.crt"), server.token(), path,
             first + i * share, share)
        for i in range(LOADERS)
    ]  # fmt: skip
    with multiprocessing.Pool(LOADERS) as pool:
        start = time.perf_counter()
        pool.map(_load, loads)
        return share * LOADERS / (time.perf_counter() - start)


async def list_latency(server: ApiServerProcess, times: int, table: bool) -> list[float]:
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io" if table else "application/json"
    samples = []
    async with client(server, timeout=60) as http:
        for _ in range(times):
            start = time.perf_counter()
            response = await http.get(DEVICES, headers={"Accept": accept})
            response.raise_for_status()
            samples.append((time.perf_counter() - start) * 1000)
    return samples


async def watch_latency(server: ApiServerProcess, watchers: int, changes: int) -> list[float]:
    """ms from a patch's send time (carried in an annotation) to each watcher's receipt."""
    samples: list[float] = []
    ready = asyncio.Semaphore(0)

    async def watch(http: httpx.AsyncClient, rv: str) -> None:
        params = {"watch": "true", "resourceVersion": rv, "timeoutSeconds": "120",
                  "fieldSelector": "metadata.name=dev-000000"}  # fmt: skip
        async with http.stream("GET", DEVICES, params=params) as response:
            ready.release()
            seen = 0
            async for line in response.aiter_lines():
                event = orjson.loads(line)
                sent = event["object"]["metadata"].get("annotations", {}).get("sent")
                if sent:
                    samples.append((time.perf_counter() - float(sent)) * 1000)
                    seen += 1
                    if seen == changes:
                        return

    async with client(server, timeout=120) as control:
        rv = (await control.get(DEVICES, params={"limit": 1})).json()["metadata"]["resourceVersion"]
        streams = [client(server, timeout=120) for _ in range(watchers)]
        tasks = [asyncio.create_task(watch(s, rv)) for s in streams]
        for _ in range(watchers):
            await ready.acquire()
        for _ in range(changes):
            patch = {"metadata": {"annotations": {"sent": repr(time.perf_counter())}}}
            response = await control.patch(
                f"{DEVICES}/dev-000000",
                content=orjson.dumps(patch),
                headers={"Content-Type": "application/merge-patch+json"},
            )
            response.raise_for_status()
            await asyncio.sleep(0.02)  # pacing: one change every 20 ms, not synchronisation
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
        for stream in streams:
            await stream.aclose()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--creates", type=int, default=10_000)
    parser.add_argument("--total", type=int, default=100_000, help="objects for the memory figure")
    parser.add_argument("--watchers", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kedge-bench-") as tmp:
        server = ApiServerProcess(Path(tmp) / "state").start()
        try:
            assert server.process is not None
            process = psutil.Process(server.process.pid)
            baseline = rate(server, "/version", 0, 10_000)
            created = rate(server, DEVICES, 0, args.creates)
            plain = asyncio.run(list_latency(server, 20, table=False))
            tables = asyncio.run(list_latency(server, 20, table=True))
            watched = asyncio.run(watch_latency(server, args.watchers, 100))
            rss_small = process.memory_info().rss / 2**20
            rate(server, DEVICES, args.creates, args.total - args.creates)
            rss_total = process.memory_info().rss / 2**20
        finally:
            server.stop()
    print(f"API server over HTTPS, {LOADERS} load processes with a connection each")
    print(f"  baseline GET /version:        {baseline:,.0f} requests/s")
    print(f"  Device creates:               {created:,.0f}/s ({created / baseline:.2f} of baseline)"
          f"  target >= 1,000: {'MET' if created >= 1000 else 'NOT MET'}")  # fmt: skip
    print(f"  list of {args.creates:,} devices (JSON):  {summary(plain)}")
    print(f"  list of {args.creates:,} devices (Table): {summary(tables)}")
    p99 = percentile(watched, 99)
    print(f"  watch delivery, {args.watchers} watchers x 100 changes: {summary(watched)}"
          f"  target p99 < 50 ms: {'MET' if p99 < 50 else 'NOT MET'}")  # fmt: skip
    print(f"  resident memory: {rss_small:.0f} MB at {args.creates:,} devices, "
          f"{rss_total:.0f} MB at {args.total:,}")  # fmt: skip


if __name__ == "__main__":
    main()
