"""Simulated edge nodes against CloudHub replicas: a load generator process for `bench.nodes`.

`--url` may list several replicas (comma separated): as EdgeHub, a node starts at the one its
name hashes to and moves to the next whenever a connection fails, ends or is refused.

Each node is a real websocket over TLS with its own client certificate (`system:node:<name>`),
and behaves as edgecore does on the channel: asks for a resync on connect, acks every object
it is sent, sends a heartbeat every `--heartbeat` seconds and a status report per device every
`--report-every` seconds (kept until the cloud acks it). Prints one JSON line of progress per
second on stdout for the driver.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import ssl
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from edgecore.hub import preference
from kedge.channel.message import Message, decode

REPORT = {
    "labels": {"kubernetes.io/os": "linux"},
    "capacity": {"cpu": "2", "memory": "2000000Ki", "pods": "110"},
    "allocatable": {"cpu": "2", "memory": "2000000Ki", "pods": "110"},
    "addresses": [{"type": "Hostname", "address": "sim"}],
    "nodeInfo": {"kubeletVersion": "v1.31.0-kedge-sim", "operatingSystem": "linux"},
    "mappers": ["modbus"],
}


@dataclass
class Stats:
    connected: int = 0
    connect_ms: list[float] = field(default_factory=list)
    objects: int = 0  # objects received (and acked)
    reports: int = 0
    acked: int = 0
    errors: int = 0
    by_url: dict[str, int] = field(default_factory=dict)  # sessions open per replica


class SimNode:
    def __init__(self, name: str, context: ssl.SSLContext, devices: list[str]) -> None:
        self.name, self.context, self.devices = name, context, devices
        self.held: dict[str, int] = {}
        self.unacked: dict[str, int] = {}
        self.seq = 0

    async def run(self, urls: list[str], stats: Stats, gate: asyncio.Semaphore, args: Any
                  ) -> None:  # fmt: skip
        order, position, failed = preference(self.name, len(urls)), 0, 0
        while True:
            url = urls[order[position]]
            try:
                async with gate:
                    start = time.perf_counter()
                    connection = await connect(url, ssl=self.context, ping_interval=15,
                                               ping_timeout=15, open_timeout=120)  # fmt: skip
                    stats.connect_ms.append((time.perf_counter() - start) * 1000)
                stats.connected += 1
                stats.by_url[url] = stats.by_url.get(url, 0) + 1
                failed = 0
                try:
                    await self._session(connection, stats, args)
                finally:
                    stats.connected -= 1
                    stats.by_url[url] -= 1
            except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError):
                stats.errors += 1
            position, failed = (position + 1) % len(urls), failed + 1
            if failed >= len(urls):  # every replica failed in a row
                failed = 0
                await asyncio.sleep(1 + random.random())  # reconnect pacing, as EdgeHub's

    async def _send(self, connection: ClientConnection, message: Message) -> None:
        await connection.send(message.encode().decode())

    async def _session(self, connection: ClientConnection, stats: Stats, args: Any) -> None:
        source = f"edge/{self.name}"
        await self._send(connection, Message(source, "resource", "", "resync",
                                             {"versions": self.held}))  # fmt: skip
        beat = asyncio.create_task(self._beat(connection, args.heartbeat))
        report = asyncio.create_task(self._report(connection, stats, args.report_every))
        try:
            async for frame in connection:
                message = decode(frame)
                if message.group == "resource" and message.operation in ("update", "delete"):
                    stats.objects += 1
                    self.held[message.resource] = int(message.resource_version or 0)
                    await self._send(connection, Message(
                        source, "resource", message.resource, "ack", None,
                        parent_id=message.msg_id, resource_version=message.resource_version,
                    ))  # fmt: skip
                elif message.group == "twin" and message.operation == "ack":
                    stats.acked += 1
                    self.unacked.pop(message.resource, None)
        finally:
            beat.cancel()
            report.cancel()

    async def _beat(self, connection: ClientConnection, every: float) -> None:
        await asyncio.sleep(random.random() * every)  # spread the nodes over the period
        while True:
            beat = Message(f"edge/{self.name}", "node", f"node/{self.name}", "update", REPORT)
            await self._send(connection, beat)
            await asyncio.sleep(every)  # the heartbeat period

    async def _report(self, connection: ClientConnection, stats: Stats, every: float) -> None:
        await asyncio.sleep(random.random() * every)
        while True:
            for device in self.devices:
                self.seq += 1
                stamp = str(int(time.time() * 1000))
                reading = {"value": f"{20 + random.random():.2f}",
                           "metadata": {"timestamp": stamp, "type": "float"}}  # fmt: skip
                twins = [{"propertyName": "temperature", "reported": reading}]
                status = {"state": "online", "twins": twins}
                resource = f"device/default/{device}"
                self.unacked[resource] = self.seq
                stats.reports += 1
                report = Message(f"edge/{self.name}", "twin", resource, "update", status,
                                 resource_version=str(self.seq))  # fmt: skip
                await self._send(connection, report)
            await asyncio.sleep(every)  # the report period


async def main_async(args: argparse.Namespace, nodes_file: list[dict[str, Any]]) -> None:
    stats, gate = Stats(), asyncio.Semaphore(args.parallel)
    sims = []
    for entry in nodes_file:
        context = ssl.create_default_context(cafile=args.ca)
        context.load_cert_chain(entry["crt"], entry["key"])
        sims.append(SimNode(entry["name"], context, entry["devices"]))
    started = time.perf_counter()
    urls = args.url.split(",")
    tasks = [asyncio.create_task(s.run(urls, stats, gate, args)) for s in sims]
    all_connected: float | None = None
    while True:
        await asyncio.sleep(1)  # progress once a second
        if all_connected is None and stats.connected == len(sims):
            all_connected = time.perf_counter() - started
        line = {"t": round(time.perf_counter() - started, 1), "connected": stats.connected,
                "all_connected_s": all_connected, "objects": stats.objects,
                "reports": stats.reports, "acked": stats.acked, "errors": stats.errors,
                "by_url": stats.by_url}  # fmt: skip
        sys.stdout.write(orjson.dumps(line).decode() + "\n")
        sys.stdout.flush()
        if all(t.done() for t in tasks):
            break


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--nodes", required=True, help="JSON: [{name, crt, key, devices}]")
    parser.add_argument("--heartbeat", type=float, default=10.0)
    parser.add_argument("--report-every", type=float, default=60.0)
    parser.add_argument("--parallel", type=int, default=100, help="connects at once")
    args = parser.parse_args()
    asyncio.run(main_async(args, json.loads(Path(args.nodes).read_text())))


if __name__ == "__main__":
    main()
