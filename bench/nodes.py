"""Many edge nodes against one cloudcore: connect time, memory per node, steady CPU.

`kedge apiserver` holds one DeviceModel, `--devices` Devices per node and the nodes' Node
objects (registered and Ready, as after a cloudcore restart); `kedge cloudcore` serves them;
`bench.nodeload` (a separate process) connects `--nodes` simulated nodes over real websockets
with mutual TLS, each acking what it is sent, sending heartbeats and device reports. Baseline
in the same run: the same load generator against `bench.bare_hub`, a websockets server with the
same TLS that drops every frame (what any hub costs at least).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import psutil
from kubernetes import client, config

from cloudcore.pki import ensure_certificates, issue_client_certificate
from controllers.apicall import write
from controllers.nodes import EDGE_ROLE
from harness.apiserver import ApiServerProcess
from harness.cloud import CloudProcess
from harness.support import free_port, port_open, wait_for

MODEL = {
    "apiVersion": "devices.kubeedge.io/v1beta1", "kind": "DeviceModel",
    "metadata": {"name": "sim-thermostat", "namespace": "default"},
    "spec": {"protocol": "modbus",
             "properties": [{"name": "temperature", "type": "FLOAT", "accessMode": "ReadOnly"}]},
}  # fmt: skip


def device(name: str, node: str) -> dict[str, Any]:
    return {
        "apiVersion": "devices.kubeedge.io/v1beta1", "kind": "Device",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"deviceModelRef": {"name": "sim-thermostat"}, "nodeName": node,
                 "protocol": {"protocolName": "modbus",
                              "configData": {"ip": "127.0.0.1", "port": 5020}}},
    }  # fmt: skip


class Load:
    """The load generator process and its latest progress line."""

    def __init__(self, argv: list[str]) -> None:
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.progress: dict[str, Any] = {}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.progress = orjson.loads(line)

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(30)


def node_files(pki: Path, workdir: Path, nodes: int, devices: int) -> Path:
    entries = []
    for i in range(nodes):
        name = f"sim-{i:05d}"
        crt, key = issue_client_certificate(pki, f"system:node:{name}")
        (workdir / f"{name}.crt").write_bytes(crt)
        (workdir / f"{name}.key").write_bytes(key)
        entries.append({"name": name, "crt": str(workdir / f"{name}.crt"),
                        "key": str(workdir / f"{name}.key"),
                        "devices": [f"{name}-d{j}" for j in range(devices)]})  # fmt: skip
    path = workdir / "nodes.json"
    path.write_text(json.dumps(entries))
    return path


def create_devices(kubeconfig: Path, nodes: int, devices: int) -> float:
    api = config.new_client_from_config(config_file=str(kubeconfig))
    custom = client.CustomObjectsApi(api)
    start = time.perf_counter()
    custom.create_namespaced_custom_object(
        "devices.kubeedge.io", "v1beta1", "default", "devicemodels", MODEL
    )

    core = client.CoreV1Api(api)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    ready = {"type": "Ready", "status": "True", "reason": "EdgeReady",
             "lastHeartbeatTime": now, "lastTransitionTime": now}  # fmt: skip

    def create(i: int) -> None:
        node = f"sim-{i:05d}"  # registered before (nodes that ran before cloudcore restarted)
        write(core.create_node, {"metadata": {"name": node, "labels": {EDGE_ROLE: ""}}})
        write(core.patch_node_status, node, {"status": {"conditions": [ready]}})
        for j in range(devices):
            custom.create_namespaced_custom_object(
                "devices.kubeedge.io", "v1beta1", "default", "devices", device(f"{node}-d{j}", node)
            )

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(create, range(nodes)))
    return time.perf_counter() - start


def cpu_over(processes: list[psutil.Process], seconds: float) -> list[float]:
    """Percent of one core each process used over `seconds` (a measuring window)."""
    before = [p.cpu_times() for p in processes]
    time.sleep(seconds)  # the measuring window
    after = [p.cpu_times() for p in processes]
    return [
        100 * ((a.user + a.system) - (b.user + b.system)) / seconds
        for a, b in zip(after, before, strict=True)
    ]


def run_load(
    args: argparse.Namespace,
    url: str,
    ca: Path,
    nodes_json: Path,
    done: Callable[[dict[str, Any]], bool],
    server: psutil.Process) -> dict[str, Any]:  # fmt: skip
    """Connect everything, wait for `done`, then measure the steady state."""
    rss_before = server.memory_info().rss
    load = Load([sys.executable, "-m", "bench.nodeload", "--url", url, "--ca", str(ca),
                 "--nodes", str(nodes_json), "--heartbeat", str(args.heartbeat),
                 "--report-every", str(args.report_every)])  # fmt: skip
    try:
        wait_for(lambda: load.progress.get("all_connected_s") is not None, timeout=1800,
                 what="every node connected")  # fmt: skip
        connected_s = float(load.progress["all_connected_s"])
        wait_for(lambda: done(load.progress), timeout=1800, what="the initial sync")
        synced_s = float(load.progress["t"])
        time.sleep(args.settle)  # first heartbeats and first condition writes pass
        generator = psutil.Process(load.process.pid)
        before = dict(load.progress)
        server_cpu, generator_cpu = cpu_over([server, generator], args.steady)
        after = dict(load.progress)
        result = {
            "connected_s": connected_s, "synced_s": synced_s,
            "rss_mb": server.memory_info().rss / 2**20,
            "per_node_kb": (server.memory_info().rss - rss_before) / 1024 / args.nodes,
            "cpu": server_cpu, "generator_cpu": generator_cpu,
            "reports_s": (after["reports"] - before["reports"]) / args.steady,
            "acked_s": (after["acked"] - before["acked"]) / args.steady,
            "connected": after["connected"], "errors": after["errors"],
        }  # fmt: skip
        print(json.dumps(result), flush=True)  # the figures, whatever happens later
        return result
    finally:
        load.stop()


def baseline(args: argparse.Namespace, pki: Path, nodes_json: Path) -> dict[str, Any]:
    port = free_port()
    hub = subprocess.Popen([sys.executable, "-m", "bench.bare_hub", "--port", str(port),
                            "--ca", str(pki / "ca.crt"), "--crt", str(pki / "server.crt"),
                            "--key", str(pki / "server.key")])  # fmt: skip
    try:
        wait_for(lambda: port_open(port), what="bare hub")
        return run_load(args, f"wss://127.0.0.1:{port}", pki / "ca.crt", nodes_json,
                        lambda _p: True, psutil.Process(hub.pid))  # fmt: skip
    finally:
        hub.kill()
        hub.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--devices", type=int, default=10, help="devices per node")
    parser.add_argument("--heartbeat", type=float, default=10.0)
    parser.add_argument("--report-every", type=float, default=60.0, help="per device, seconds")
    parser.add_argument("--steady", type=float, default=60.0, help="measuring window, seconds")
    parser.add_argument(
        "--settle", type=float, default=60.0, help="seconds after the sync before measuring"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kedge-bench-") as tmp:
        workdir = Path(tmp)
        pki = workdir / "cloudcore" / "pki"
        ensure_certificates(pki)
        nodes_json = node_files(pki, workdir, args.nodes, args.devices)
        bare = baseline(args, pki, nodes_json)
        apiserver = ApiServerProcess(workdir / "apiserver").start()
        cloud = CloudProcess(apiserver, workdir / "cloudcore", extra=("--node-grace", "120"))
        try:
            created = create_devices(apiserver.kubeconfig, args.nodes, args.devices)
            cloud.start()
            wanted = args.nodes * (args.devices + 1)
            sync_db = workdir / "cloudcore" / "objectsync.db"

            def listed() -> bool:
                with sqlite3.connect(sync_db) as db:
                    rows = db.execute("SELECT COUNT(*) FROM object_sync").fetchone()
                return bool(int(rows[0]) >= wanted)

            wait_for(listed, timeout=1800, what="cloudcore listed every device")
            assert cloud.process is not None
            measured = run_load(args, f"wss://127.0.0.1:{cloud.port}", pki / "ca.crt", nodes_json,
                                lambda p: p.get("objects", 0) >= wanted,
                                psutil.Process(cloud.process.pid))  # fmt: skip
            assert apiserver.process is not None
            api_rss = psutil.Process(apiserver.process.pid).memory_info().rss / 2**20
        finally:
            if cloud.process is not None:  # 10,000 sessions take a while to close
                cloud.process.terminate()
                try:
                    cloud.process.wait(300)
                except subprocess.TimeoutExpired:
                    cloud.process.kill()
            apiserver.stop()
    print(f"{args.nodes} nodes x {args.devices} devices; heartbeat every {args.heartbeat:.0f} s, "
          f"a report per device every {args.report_every:.0f} s; {created:.0f} s to create "
          f"{args.nodes * args.devices} Devices")  # fmt: skip
    for label, r in (("bare websockets+TLS hub (baseline)", bare), ("cloudcore", measured)):
        print(f"  {label}: all connected in {r['connected_s']:.1f} s, synced at "
              f"{r['synced_s']:.1f} s; RSS {r['rss_mb']:.0f} MB ({r['per_node_kb']:.1f} KB "
              f"per node); steady CPU {r['cpu']:.0f} % of a core (load generator "
              f"{r['generator_cpu']:.0f} %); {r['reports_s']:.0f} reports/s, "
              f"{r['acked_s']:.0f} acked/s; {r['connected']} connected, "
              f"{r['errors']} connect errors")  # fmt: skip
    ratio_time = measured["connected_s"] / bare["connected_s"]
    ratio_memory = measured["per_node_kb"] / max(bare["per_node_kb"], 0.1)
    print(
        f"  API server RSS {api_rss:.0f} MB; cloudcore connect time {ratio_time:.1f}x and "
        f"memory per node {ratio_memory:.1f}x the bare hub's"
    )


if __name__ == "__main__":
    main()
