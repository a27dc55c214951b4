"""`kedge up`: the whole system on one machine, stopped cleanly by Ctrl-C.

Started in order, each waited for: the embedded API server (CRDs loaded), cloudcore with the
standalone control plane, the four simulators, then the samples (DeviceModels and Devices bound
to `edge-node-1`) and the mapper DaemonSets are applied, and the edge node joins with a token
and runs in this process. The mappers reach it as pods, the devices as Device objects: the same
path a real deployment takes. A busy default port is replaced by a free one (and the samples
are rewritten to match), so a system mosquitto on 1883 does not stop it.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "crds" / "samples"
MAPPERS = ROOT / "deploy" / "mappers"
NODE = "edge-node-1"
SIMULATORS = {  # protocol -> (default port, the address text in its sample)
    "modbus": (5020, "port: {}"),
    "opcua": (4840, "127.0.0.1:{}"),
    "bluetooth": (19002, "127.0.0.1:{}"),
    "zigbee": (19003, "127.0.0.1:{}"),
}


def say(text: str) -> None:
    print(f"kedge up: {text}", file=sys.stderr, flush=True)  # noqa: T201 - progress for the user


def port_or_free(port: int, what: str) -> int:
    """`port` if it can be bound on loopback, else a free one (e.g. a system mosquitto on 1883)."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
            return port
        except OSError:
            probe.bind(("127.0.0.1", 0))
            free = int(probe.getsockname()[1])
    say(f"port {port} ({what}) is in use; using {free}")
    return free


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_until(check: Callable[[], bool], what: str, process: subprocess.Popen[bytes],
               log: Path, timeout: float = 60) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout
    while not check():
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}; see {log}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {timeout:g}s; see {log}")
        time.sleep(0.05)


class Children:
    """The processes `kedge up` started; stopped in reverse order (SIGTERM, then SIGKILL)."""

    def __init__(self) -> None:
        self.running: list[subprocess.Popen[bytes]] = []

    def start(self, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            process = subprocess.Popen(argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                                       start_new_session=True)  # fmt: skip
        self.running.append(process)
        return process

    def stop(self) -> None:
        for process in reversed(self.running):
            if process.poll() is None:
                process.terminate()
        for process in reversed(self.running):
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def apply(kubeconfig: Path, texts: list[str]) -> int:
    """Server-side apply of every document (idempotent: a second `kedge up` changes nothing)."""
    from kubernetes import config as kube_config
    from kubernetes.dynamic import DynamicClient

    api = kube_config.new_client_from_config(str(kubeconfig))
    try:
        dynamic = DynamicClient(api)
        count = 0
        for text in texts:
            for doc in yaml.safe_load_all(text):
                if not doc:
                    continue
                kind = dynamic.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
                meta: dict[str, Any] = doc["metadata"]
                namespace = meta.get("namespace", "default") if kind.namespaced else None
                kind.server_side_apply(body=doc, name=meta["name"], namespace=namespace,
                                       field_manager="kedge-up", force_conflicts=True)  # fmt: skip
                count += 1
        return count
    finally:
        api.close()


def _token(cloud_state: Path) -> str:
    made = subprocess.run(
        [sys.executable, "-m", "kedge", "token", "create", "--state-dir", str(cloud_state),
         "--node", NODE],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return made.stdout.strip()


def run(args: argparse.Namespace, edgecore: Callable[[list[str]], int]) -> int:
    state: Path = args.state_dir.resolve()
    children = Children()
    python = sys.executable
    try:
        ports = {
            "api": port_or_free(args.api_port, "Kubernetes API"),
            "hub": port_or_free(args.cloud_port, "CloudHub"),
            "join": port_or_free(args.join_port, "join service"),
            "stream": port_or_free(args.stream_port, "CloudStream"),
            "mqtt": port_or_free(args.mqtt_port, "MQTT"),
            "http": port_or_free(args.http_port, "edge HTTP API"),
        }
        sim_ports = {p: port_or_free(d, f"{p} simulator") for p, (d, _) in SIMULATORS.items()}
        api_state, cloud_state = state / "apiserver", state / "cloudcore"
        api_state.mkdir(parents=True, exist_ok=True)
        kubeconfig = api_state / "kubeconfig"
        say(f"starting the API server on https://127.0.0.1:{ports['api']}")
        api_argv = [python, "-m", "cloudcore.apiserver", "--state-dir", str(api_state),
                    "--port", str(ports["api"])]  # fmt: skip
        api = children.start(api_argv, api_state / "apiserver.log")
        wait_until(lambda: _listening(ports["api"]) and kubeconfig.exists(), "the API server",
                   api, api_state / "apiserver.log")  # fmt: skip
        say(f"starting cloudcore (CloudHub wss://127.0.0.1:{ports['hub']})")
        cloud = children.start(
            [python, "-m", "cloudcore", "--kubeconfig", str(kubeconfig), "--state-dir",
             str(cloud_state), "--port", str(ports["hub"]), "--join-port", str(ports["join"]),
             "--stream-port", str(ports["stream"]),
             "--workload-controllers"], cloud_state / "cloudcore.log",
        )  # fmt: skip
        for protocol, port in sim_ports.items():
            say(f"starting the {protocol} simulator on 127.0.0.1:{port}")
            log = state / "simulators" / f"{protocol}.log"
            sim = children.start([python, "-m", "kedge", "simulate", protocol, "--port", str(port)],
                                 log)  # fmt: skip
            wait_until(functools.partial(_listening, port), f"the {protocol} simulator", sim, log)
        wait_until(lambda: _listening(ports["hub"]) and _listening(ports["join"]), "cloudcore",
                   cloud, cloud_state / "cloudcore.log")  # fmt: skip
        samples = []
        for path in sorted(SAMPLES.glob("*.yaml")):
            text = path.read_text()
            protocol = path.stem
            if protocol in SIMULATORS:
                default, pattern = SIMULATORS[protocol]
                text = text.replace(pattern.format(default), pattern.format(sim_ports[protocol]))
            samples.append(text)
        mappers = [p.read_text() for p in sorted(MAPPERS.glob("*.yaml"))]
        count = apply(kubeconfig, samples + mappers)
        say(f"applied {count} objects: sample DeviceModels and Devices, mapper DaemonSets")
        token = _token(cloud_state)
        print(  # noqa: T201 - the quick start shows where to look
            f"\nkedge up: the whole system runs on this machine; edge node {NODE} is joining\n"
            f"  export KUBECONFIG={kubeconfig}\n"
            f"  kubectl get nodes; kubectl get pods -A; kubectl get devices\n"
            f"  kubectl get device thermostat-1 -o yaml    # reported twins in status\n"
            f"  kubectl logs -n kedge-system -l app.kubernetes.io/name=mapper-modbus"
            f"  (or {state}/edge/pods/*/logs/)\n"
            f"  curl http://127.0.0.1:{ports['http']}/v1/devices/default/thermostat-1"
            f"   (OpenAPI at /docs)\n"
            f"  logs: {state}/*/*.log; state: {state}\n"
            f"Ctrl-C stops everything.\n",
            file=sys.stderr, flush=True,
        )  # fmt: skip
        return edgecore([
            "--node", NODE, "--state-dir", str(state / "edge"),
            "--broker", f"local:{ports['mqtt']}", "--http", f"127.0.0.1:{ports['http']}",
            "--cloud", f"wss://127.0.0.1:{ports['hub']}",
            "--join", f"https://127.0.0.1:{ports['join']}", "--token", token,
        ])  # fmt: skip
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        say(f"failed: {exc}")
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        with contextlib.suppress(KeyboardInterrupt):
            children.stop()
