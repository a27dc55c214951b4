"""The node's heartbeat: what the cloud registers as its Node, sent every `interval` seconds
while connected (and at once after each connect); the cloud renews the node's Lease with it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgecore.hub import EdgeHub
from kedge.channel.routes import heartbeat

VERSION = "v1.31.0-kedge-0.1.0"  # kubelet-style version: the Kubernetes API level, then ours
ARCHES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def _os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.partition("=")[2].strip('"')
    return platform.system()


def _memory_kib() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 1024


def node_report(node: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """Labels, capacity/allocatable, addresses and nodeInfo, as a kubelet reports them."""
    arch = ARCHES.get(platform.machine(), platform.machine())
    resources = {"cpu": str(os.cpu_count() or 1), "memory": f"{_memory_kib()}Ki", "pods": "110"}
    return {
        "labels": {
            "kubernetes.io/hostname": node, "kubernetes.io/os": "linux",
            "kubernetes.io/arch": arch, **(labels or {}),
        },
        "capacity": resources,
        "allocatable": resources,
        "addresses": [{"type": "Hostname", "address": socket.gethostname()}],
        "nodeInfo": {
            "machineID": _read("/etc/machine-id"),
            "bootID": _read("/proc/sys/kernel/random/boot_id"),
            "systemUUID": "",
            "kernelVersion": platform.release(),
            "osImage": _os_image(),
            "operatingSystem": "linux",
            "architecture": arch,
            "containerRuntimeVersion": "process://kedge",
            "kubeletVersion": VERSION,
            "kubeProxyVersion": "",
        },
    }  # fmt: skip


class Heartbeat:
    def __init__(
        self,
        hub: EdgeHub,
        node: str,
        interval: float,
        labels: dict[str, str],
        mappers: Callable[[], dict[str, Any]],
        wake: asyncio.Event,
    ) -> None:
        """`mappers()`: `{"mappers": [protocols alive], "mappersLost": {protocol: since}}`,
        sent with each beat; `wake` set sends one at once (a mapper came or went)."""
        self.hub, self.node, self.interval, self.mappers = hub, node, interval, mappers
        self.report = node_report(node, labels)
        self.wake = wake

    async def run(self) -> None:
        """Until cancelled: a heartbeat as soon as connected, then every `interval`, and at once
        when the node's mappers change."""
        while True:
            await self.hub.connected.wait()
            self.wake.clear()
            await self.hub.send(heartbeat(self.node, {**self.report, **self.mappers()}))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.interval)  # the heartbeat period
