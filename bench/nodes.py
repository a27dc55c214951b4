"""Many edge nodes against one cloudcore and against several replicas: connect time, memory per
node, steady CPU, reports acked, false Unknown nodes, reconnect after a replica is killed, stop.

`kedge apiserver` holds one DeviceModel, `--devices` Devices per node and the nodes' Node
objects (registered and Ready, as after a cloudcore restart); each of `--replicas` runs (a fresh
API server each) starts that many `kedge cloudcore` replicas sharing one CA;
`bench.nodeload` (a separate process) connects `--nodes` simulated nodes over real websockets
with mutual TLS, each acking what it is sent, sending heartbeats and device reports. Baseline
in the same run: the same load generator against `bench.bare_hub`, a websockets server with the
same TLS that drops every frame (what any hub costs at least).
"""

from __future__ import annotations

import argparse
import json
import shutil
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
from controllers.nodeview import EDGE_ROLE
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


def _reconnect(load: Load, nodes: int, kill: tuple[str, Callable[[], None]]) -> float:
    """Seconds from killing a replica (its URL, how) until every node is connected to the
    others."""
    url, how = kill
    start = time.monotonic()
    how()

    def moved() -> bool:
        by_url = dict(load.progress.get("by_url") or {})
        return bool(sum(n for u, n in by_url.items() if u != url) == nodes)

    wait_for(moved, timeout=600, what="every node connected to a surviving replica")
    return time.monotonic() - start


def run_load(
    args: argparse.Namespace,
    url: str,
    ca: Path,
    nodes_json: Path,
    done: Callable[[dict[str, Any]], bool],
    servers: list[psutil.Process],
    kill: tuple[str, Callable[[], None]] | None = None,
    others: tuple[psutil.Process, ...] = (),
    stop: Callable[[], float] | None = None,
    warm: int = 0) -> dict[str, Any]:  # fmt: skip
    """Connect everything, wait for `done`, measure the steady state (and, with `kill`, the
    time to reconnect a killed replica's nodes; `others`: more processes whose CPU counts;
    `stop`: stops the servers with the sessions still open, returning the seconds it took;
    `warm`: reports acked before measuring, beyond the settling time)."""
    rss_before = sum(p.memory_info().rss for p in servers)
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
        wait_for(lambda: load.progress.get("acked", 0) >= warm, timeout=3600,
                 what=f"{warm} reports acked")  # fmt: skip
        warmed_s = float(load.progress["t"])
        generator = psutil.Process(load.process.pid)
        before = dict(load.progress)
        measured = cpu_over([*servers, generator, *others], args.steady)
        server_cpu, generator_cpu = measured[: len(servers)], measured[len(servers)]
        other_cpu = measured[len(servers) + 1 :]
        after = dict(load.progress)
        rss = sum(p.memory_info().rss for p in servers)
        result = {
            "connected_s": connected_s, "synced_s": synced_s, "warmed_s": warmed_s,
            "rss_mb": rss / 2**20,
            "per_node_kb": (rss - rss_before) / 1024 / args.nodes,
            "cpu": sum(server_cpu), "generator_cpu": generator_cpu,
            "apiserver_cpu": sum(other_cpu),
            "reports_s": (after["reports"] - before["reports"]) / args.steady,
            "acked_s": (after["acked"] - before["acked"]) / args.steady,
            "connected": after["connected"], "errors": after["errors"],
        }  # fmt: skip
        if kill is not None:
            result["reconnect_s"] = round(_reconnect(load, args.nodes, kill), 1)
        if stop is not None:
            result["stop_s"] = stop()
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
                        lambda _p: True, [psutil.Process(hub.pid)])  # fmt: skip
    finally:
        hub.kill()
        hub.wait(30)


def _listed(cloud: CloudProcess) -> bool:
    path = cloud.state / "cloudcore.log"
    return path.exists() and "everything listed" in path.read_text(errors="replace")


def _marked_unknown(clouds: list[CloudProcess]) -> int:
    """Nodes the node monitors marked Unknown (every simulated node stays connected)."""
    return sum((c.state / "cloudcore.log").read_text(errors="replace").count(
        "node stopped posting status") for c in clouds)  # fmt: skip


def _stop(clouds: list[CloudProcess]) -> float:
    """Seconds the slowest replica took from SIGTERM to exit; all are signalled at once (while
    the load generator still holds its sessions open, when called from run_load)."""
    running = [c.process for c in clouds if c.process is not None and c.process.poll() is None]
    start = time.monotonic()
    for process in running:
        process.terminate()
    for process in running:
        try:
            process.wait(max(1.0, 300 - (time.monotonic() - start)))
        except subprocess.TimeoutExpired:
            process.kill()
    return time.monotonic() - start if running else 0.0


def replicas_run(args: argparse.Namespace, workdir: Path, pki: Path, nodes_json: Path,
                 count: int) -> dict[str, Any]:  # fmt: skip
    """`count` cloudcore replicas against a fresh API server holding the fleet."""
    run_dir = workdir / f"replicas-{count}"
    apiserver = ApiServerProcess(run_dir / "apiserver").start()
    flags = ("--node-lease-duration", str(args.lease), "--status-qps", str(args.status_qps))
    (run_dir / "cloud-0").mkdir(parents=True)
    shutil.copytree(pki, run_dir / "cloud-0" / "pki")
    clouds = [CloudProcess(apiserver, run_dir / "cloud-0", extra=flags)]
    try:
        create_devices(apiserver.kubeconfig, args.nodes, args.devices)
        clouds[0].start()
        clouds += [clouds[0].replica(run_dir / f"cloud-{i}", *flags) for i in range(1, count)]
        wait_for(lambda: all(_listed(c) for c in clouds), timeout=1800, what="listed")
        urls = ",".join(c.url for c in clouds)
        wanted = args.nodes * (args.devices + 1)
        processes = [psutil.Process(c.process.pid) for c in clouds if c.process]
        assert apiserver.process is not None
        result = run_load(args, urls, pki / "ca.crt", nodes_json,
                          lambda p: p.get("objects", 0) >= wanted, processes,
                          (clouds[0].url, clouds[0].kill) if count > 1 else None,
                          (psutil.Process(apiserver.process.pid),),
                          lambda: _stop(clouds),
                          args.nodes * args.devices if args.warm else 0)  # fmt: skip
        result["false_unknown"] = _marked_unknown(clouds)
        return result
    finally:
        _stop(clouds)
        apiserver.stop()


def _report(args: argparse.Namespace, bare: dict[str, Any], runs: dict[int, dict[str, Any]]
            ) -> None:  # fmt: skip
    print(f"{args.nodes} nodes x {args.devices} devices; heartbeat every {args.heartbeat:.0f} s, "
          f"a report per device every {args.report_every:.0f} s")  # fmt: skip
    print(json.dumps({"bare": bare, **{f"replicas-{k}": v for k, v in runs.items()}}, indent=1))
    for label, r in (("bare hub (baseline)", bare),
                     *((f"{k} replica(s)", v) for k, v in runs.items())):  # fmt: skip
        print(f"  {label}: all connected in {r['connected_s']:.1f} s; RSS {r['rss_mb']:.0f} MB "
              f"({r['per_node_kb']:.1f} KB per node); steady CPU {r['cpu']:.0f} % of a core "
              f"(API server {r.get('apiserver_cpu', 0):.0f} %); "
              f"{r['reports_s']:.0f} reports/s sent, {r['acked_s']:.0f} acked/s "
              f"({100 * r['acked_s'] / max(r['reports_s'], 1):.0f} %); {r['connected']} "
              f"connected; false Unknown {r.get('false_unknown', '-')}; reconnect after a "
              f"kill {r.get('reconnect_s', '-')} s; stop {r.get('stop_s', 0):.1f} s")  # fmt: skip


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
    parser.add_argument("--lease", type=float, default=120.0, help="node lease duration, s")
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 3])
    parser.add_argument(
        "--warm", action="store_true",
        help="measure once as many reports were acked as there are devices: every device's "
        "first report (its DeviceStatus made, its conditions written) behind, as in a fleet "
        "whose cloudcore has run before",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the logs and state afterwards")
    parser.add_argument(
        "--status-qps", type=float, default=1000.0,
        help="each replica's status write budget (cloudcore's default: 100)",
    )  # fmt: skip
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="kedge-bench-"))
    try:
        pki = workdir / "pki"
        ensure_certificates(pki)
        nodes_json = node_files(pki, workdir, args.nodes, args.devices)
        bare = baseline(args, pki, nodes_json)
        runs = {n: replicas_run(args, workdir, pki, nodes_json, n) for n in args.replicas}
    finally:
        if args.keep:
            print(f"logs and state kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    _report(args, bare, runs)


if __name__ == "__main__":
    main()
