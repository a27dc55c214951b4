"""Pod create -> Running on the edge node, p50/p99 for 50 pods (KubeEdge's 100k-node test
reports pod start-up p99 of 4.1 s against a 5 s SLO), under the process runtime and (where
containerd can run: root) under CRI, each pod a real container with its own address.

The clock starts at the create call (official client) and stops when a watch on the pod shows
phase Running: API server -> cloudcore (pod delivery) -> CloudHub -> edgecore (stored, edged
starts the process) -> pod status -> cloudcore -> pods/status. The pods are created in one
burst, as a Deployment scale-up would, each running a sleeping `kedge/python`. Baseline in the
same run: starting the same Python process directly (Popen until its first output line).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

from bench.cloud import NODE, cloud_system
from bench.harness import summary
from edgecore.edged.cri.images import busybox_rootfs, import_archive, pack
from edgecore.edged.cri.runtime import run_dir
from harness.support import wait_for

SCRIPT = "import time; print('up', flush=True); time.sleep(600)"
CONTAINER = {"name": "main", "image": "kedge/python", "args": ["-c", SCRIPT]}


def baseline(count: int) -> list[float]:
    """ms from Popen to the first line a bare interpreter prints."""
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE)
        assert process.stdout is not None
        process.stdout.readline()
        samples.append((time.perf_counter() - started) * 1000)
        process.kill()
        process.wait()
    return samples


class RunningWatch:
    """When each pod was first seen Running (a watch in a thread)."""

    def __init__(self, core: client.CoreV1Api) -> None:
        self.core, self._watch = core, watch.Watch()
        self.running: dict[str, float] = {}
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        with contextlib.suppress(Exception):  # ends when the API server stops
            for event in self._watch.stream(self.core.list_namespaced_pod, "default"):
                pod: Any = event["object"]
                if pod.status and pod.status.phase == "Running":
                    self.running.setdefault(pod.metadata.name, time.perf_counter())


BUSYBOX = "localhost/kedge/busybox:bench"
SLEEPER = "echo up; trap 'exit 0' TERM; sleep 600 & wait"
BUSYBOX_CONTAINER = {"name": "main", "image": BUSYBOX, "command": ["/bin/sh", "-c", SLEEPER]}


def _busybox(socket: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rootfs = Path(tmp) / "rootfs"
        rootfs.mkdir()
        busybox_rootfs(rootfs)
        import_archive(socket, pack(rootfs, BUSYBOX, Path(tmp) / "busybox.tar", ["/bin/sh"]))


def measure(count: int, cri: bool = False) -> list[float]:
    flags = ("--runtime", "cri") if cri else ()
    with cloud_system(mapper=False, edge_flags=flags) as system:
        api = config.new_client_from_config(str(system.cloud.apiserver.kubeconfig))
        core = client.CoreV1Api(api)
        wait_for(lambda: core.list_node().items, timeout=60, what="the edge node registered")
        if cri:
            _busybox(run_dir(system.edge.state_dir) / "containerd.sock")
        container = BUSYBOX_CONTAINER if cri else CONTAINER
        seen = RunningWatch(core)
        created: dict[str, float] = {}
        for index in range(count):
            name = f"bench-{index:03d}"
            body = {"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": name, "namespace": "default"},
                    "spec": {"nodeName": NODE, "terminationGracePeriodSeconds": 2,
                             "containers": [container]}}  # fmt: skip
            created[name] = time.perf_counter()
            core.create_namespaced_pod("default", body, _preload_content=False)
        wait_for(lambda: len(seen.running) == count, timeout=120, what="every pod Running")
        api.close()
        return [(seen.running[name] - at) * 1000 for name, at in created.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pods", type=int, default=50)
    args = parser.parse_args()
    base = baseline(args.pods)
    pods = measure(args.pods)
    cri = measure(args.pods, cri=True) if os.geteuid() == 0 and shutil.which("containerd") else []
    print(f"bare interpreter start (Popen -> first line): {summary(base)}")  # noqa: T201
    print(f"pod create -> Running, {args.pods} pods in one burst, process runtime: {summary(pods)}")  # noqa: T201
    if cri:
        print(
            f"pod create -> Running, {args.pods} pods in one burst, CRI (containerd, "
            f"pod network): {summary(cri)}"
        )  # noqa: T201
    ratio = sorted(pods)[len(pods) // 2] / sorted(base)[len(base) // 2]
    print(f"p50 ratio pod path / bare start: {ratio:.1f}x; target p99 < 5000 ms")  # noqa: T201


if __name__ == "__main__":
    main()
