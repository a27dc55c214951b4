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
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import yaml

from kedge.children import Children
from kedge.process import end_stale, private_state, write_private
from mappers.registry import PROTOCOLS

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "crds" / "samples"
MAPPERS = ROOT / "deploy" / "mappers"
NODE = "edge-node-1"


def say(text: str) -> None:
    print(f"kedge up: {text}", file=sys.stderr, flush=True)  # noqa: T201 - progress for the user


def _bindable(port: int) -> bool:
    """Whether a server could listen on `port` now: servers set SO_REUSEADDR, so connections
    of an earlier run still in TIME_WAIT do not count as the port in use."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def port_or_free(port: int, what: str, before: int | None = None) -> int:
    """The port the last run on this state dir used, else `port`, else a free one (e.g. a
    system mosquitto holds 1883), so a restart comes up where the last run was."""
    if before is not None and before != port and _bindable(before):
        return before
    if _bindable(port):
        return port
    with socket.socket() as probe:
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


def apply(kubeconfig: Path, texts: list[str], reset: bool = False) -> int:
    """Create every document that is absent; objects an operator has (changed or not) stay as
    they are, unless `reset` applies the samples over them. Returns how many were written."""
    from kubernetes import config as kube_config
    from kubernetes.dynamic import DynamicClient
    from kubernetes.dynamic.exceptions import NotFoundError

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
                if not reset:
                    try:
                        kind.get(name=meta["name"], namespace=namespace)
                        continue  # there already: what the operator made of it stands
                    except NotFoundError:
                        pass
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


PIDS = "up.pids"  # the children of the running `kedge up`, for a later start to end
PORTS = "up.ports.json"  # the ports the last run used, by the ports asked for
Supervise = Callable[[], Coroutine[Any, Any, None]]


def _ports(args: argparse.Namespace, state: Path) -> dict[str, int]:
    """Each port: the one the last run on this state dir used for the same request, else the
    one asked for, else a free one; remembered for the next run."""
    try:
        before = json.loads((state / PORTS).read_text())
    except (OSError, ValueError):
        before = {}
    asked = {
        "api": (args.api_port, "Kubernetes API"), "hub": (args.cloud_port, "CloudHub"),
        "join": (args.join_port, "join service"), "stream": (args.stream_port, "CloudStream"),
        "mqtt": (args.mqtt_port, "MQTT"), "http": (args.http_port, "edge HTTP API"),
        "console": (args.console_port, "web console"),
        **{p.name: (p.port, f"{p.name} simulator") for p in PROTOCOLS.values()},
    }  # fmt: skip
    ports = {}
    for name, (port, what) in asked.items():
        last = before.get(name) if isinstance(before, dict) else None
        used = last[1] if isinstance(last, list) and last[:1] == [port] else None
        ports[name] = port_or_free(port, what, used if isinstance(used, int) else None)
    write_private(state / PORTS, json.dumps({n: [asked[n][0], p] for n, p in ports.items()}))
    return ports


def _end_leftovers(state: Path) -> None:
    """What a killed earlier run on this state dir left running (nothing, normally: its
    children die with it) would hold its ports: end it first."""
    for pid_file in (state / PIDS, state / "edge" / "broker" / "mosquitto.pid"):
        for pid in end_stale(pid_file):
            say(f"ended process {pid}, left running by an earlier run on {state}")


def _start_cloud(children: Children, state: Path, ports: dict[str, int]) -> Path:
    """The API server and cloudcore; the kubeconfig's path once both listen."""
    python, api_state, cloud_state = sys.executable, state / "apiserver", state / "cloudcore"
    api_state.mkdir(parents=True, exist_ok=True)
    kubeconfig = api_state / "kubeconfig"
    say(f"starting the API server on https://127.0.0.1:{ports['api']}")
    api = children.start("the API server", [python, "-m", "cloudcore.apiserver", "--state-dir",
                          str(api_state), "--port", str(ports["api"])],
                          api_state / "apiserver.log")  # fmt: skip
    wait_until(lambda: _listening(ports["api"]) and kubeconfig.exists(), "the API server",
               api, api_state / "apiserver.log")  # fmt: skip
    say(f"starting cloudcore (CloudHub wss://127.0.0.1:{ports['hub']})")
    cloud = children.start(
        "cloudcore",
        [python, "-m", "cloudcore", "--kubeconfig", str(kubeconfig), "--state-dir",
         str(cloud_state), "--port", str(ports["hub"]), "--join-port", str(ports["join"]),
         "--stream-port", str(ports["stream"]), "--workload-controllers",
         "--no-leader-elect"],  # one cloudcore: no Lease to renew every 2 s
        cloud_state / "cloudcore.log",
    )  # fmt: skip
    for protocol in PROTOCOLS:
        port, log = ports[protocol], state / "simulators" / f"{protocol}.log"
        say(f"starting the {protocol} simulator on 127.0.0.1:{port}")
        sim = children.start(f"the {protocol} simulator", [python, "-m", "kedge", "simulate",
                             protocol, "--port", str(port)], log)  # fmt: skip
        wait_until(functools.partial(_listening, port), f"the {protocol} simulator", sim, log)
    wait_until(lambda: _listening(ports["hub"]) and _listening(ports["join"]), "cloudcore",
               cloud, cloud_state / "cloudcore.log")  # fmt: skip
    return kubeconfig


def _start_console(children: Children, state: Path, kubeconfig: Path, port: int) -> str:
    """The web console, and a fresh admin console token for this run (only its hash is kept;
    the one of the run before stops working)."""
    console_state, python = state / "console", sys.executable
    base = [python, "-m", "cloudcore.console", "--kubeconfig", str(kubeconfig), "--state-dir",
            str(console_state)]  # fmt: skip
    console_state.mkdir(exist_ok=True, mode=0o700)
    made = subprocess.run([*base, "token", "create", "--role", "admin", "--name", "kedge-up"],
                          capture_output=True, text=True, check=True, timeout=60)  # fmt: skip
    log = console_state / "console.log"
    process = children.start("the web console", [*base, "--port", str(port)], log)
    wait_until(lambda: _listening(port), "the web console", process, log)
    return made.stdout.strip()


def _apply_samples(kubeconfig: Path, ports: dict[str, int], reset: bool) -> None:
    samples = []
    for path in sorted(SAMPLES.glob("*.yaml")):
        text = path.read_text()
        plugin = PROTOCOLS.get(path.stem)
        if plugin is not None:  # the sample names the simulator's default port
            text = text.replace(plugin.address(plugin.port), plugin.address(ports[plugin.name]))
        samples.append(text)
    mappers = [p.read_text() for p in sorted(MAPPERS.glob("*.yaml"))]
    count = apply(kubeconfig, samples + mappers, reset)
    if count:
        say(f"applied {count} objects: sample DeviceModels and Devices, mapper DaemonSets")
    else:
        say("the samples and mapper DaemonSets are there already (kedge up --reset restores them)")


def _show(state: Path, kubeconfig: Path, ports: dict[str, int], console_token: str) -> None:
    print(  # noqa: T201 - the quick start shows where to look
        f"\nkedge up: the whole system runs on this machine; edge node {NODE} is joining\n"
        f"  console: http://127.0.0.1:{ports['console']}/  token (admin, this run only):"
        f" {console_token}\n"
        f"  export KUBECONFIG={kubeconfig}\n"
        f"  kubectl get nodes; kubectl get pods -A; kubectl get devices,devicestatuses\n"
        f"  kubectl get devicestatus thermostat-1 -o yaml    # reported twins and state\n"
        f"  kubectl logs -n kedge-system -l app.kubernetes.io/name=mapper-modbus"
        f"  (or {state}/edge/pods/*/logs/)\n"
        f"  curl http://127.0.0.1:{ports['http']}/v1/devices/default/thermostat-1"
        f"   (OpenAPI at /docs)\n"
        f"  logs: {state}/*/*.log; state: {state}\n"
        f"Processes that stop are restarted (and said so here). Ctrl-C stops everything.\n",
        file=sys.stderr, flush=True,
    )  # fmt: skip


def _runtime(wanted: str, state: Path) -> list[str]:
    """edgecore's flags for the pod runtime: CRI where it can run (root, containerd), with
    kedge's images (built once into the state dir); else the process runtime, saying why."""
    if wanted != "cri":
        return []
    missing = [b for b in ("containerd", "runc", "ctr") if shutil.which(b) is None]
    if os.geteuid() != 0 or missing:
        why = "not root" if os.geteuid() != 0 else f"{', '.join(missing)} missing"
        say(f"CRI runtime unavailable ({why}): pods run as host processes")
        return []
    from edgecore.edged.cri import kedge_images

    archive = state / "images" / "kedge-images.tar"
    if not archive.exists():
        say("building kedge's images for the CRI runtime (once; about 20 s)")
        archive.parent.mkdir(parents=True, exist_ok=True)
        kedge_images.build(archive, ROOT)
    return ["--runtime", "cri", "--cri-images", str(archive)]


def run(args: argparse.Namespace, edgecore: Callable[[list[str], Supervise], int]) -> int:
    """Everything up, the edge node in this process; `edgecore(argv, supervise)` runs the
    node and, beside it on its event loop, `supervise()` restarting what stops."""
    state: Path = args.state_dir.resolve()
    private_state(state)  # every file 0600, every directory 0700, also in the processes started
    _end_leftovers(state)
    children = Children(state / PIDS, say)
    try:
        ports = _ports(args, state)
        kubeconfig = _start_cloud(children, state, ports)
        _apply_samples(kubeconfig, ports, args.reset)
        token = _token(state / "cloudcore")
        console_token = _start_console(children, state, kubeconfig, ports["console"])
        _show(state, kubeconfig, ports, console_token)
        argv = [
            "--node", NODE, "--state-dir", str(state / "edge"),
            "--broker", f"local:{ports['mqtt']}", "--http", f"127.0.0.1:{ports['http']}",
            "--cloud", f"wss://127.0.0.1:{ports['hub']}",
            "--join", f"https://127.0.0.1:{ports['join']}", "--token", token,
        ]  # fmt: skip
        return edgecore(argv + _runtime(args.runtime, state), children.supervise)
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        say(f"failed: {exc}")
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        with contextlib.suppress(KeyboardInterrupt):
            children.stop()
