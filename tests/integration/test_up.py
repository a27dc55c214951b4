"""`kedge up` (what `make up` runs): the whole system on one machine. The four sample devices
report within 10 s of it being up, through mapper pods the edge node runs; busy ports are
avoided; Ctrl-C stops every process it started."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest

from harness.apiserver import kubectl_binary
from harness.support import ROOT, free_port, wait_for
from mappers.registry import PROTOCOLS as REGISTERED

PROTOCOLS = set(REGISTERED)


def _reporting(http_port: int) -> set[str]:
    """Protocols with a device that has a reported value."""
    try:
        items = httpx.get(f"http://127.0.0.1:{http_port}/v1/devices", timeout=2).json()["items"]
    except httpx.HTTPError:
        return set()
    return {d["protocol"] for d in items if any((t.get("reported") or {}) for t in d["twins"])}


def _private(state: Path) -> list[str]:
    """Files and directories under `state` that anyone but their owner may read."""
    loose = []
    for path in [state, *state.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            loose.append(f"{path.relative_to(state)} {oct(mode)}")
    return loose


def _setpoint(kubectl: Callable[..., str]) -> str | None:
    device = json.loads(kubectl("get", "device", "thermostat-1", "-o", "json"))
    return next((p.get("desired", {}).get("value") for p in device["spec"]["properties"]
                 if p["name"] == "setpoint"), None)  # fmt: skip


def test_kedge_up_runs_everything_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    http_port, api_port = free_port(), free_port()
    cloud_port, join_port = free_port(), free_port()
    with socket.socket() as busy:  # e.g. the system's own mosquitto on 1883
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        log = tmp_path / "up.log"
        with log.open("wb") as out:
            up = subprocess.Popen(
                [sys.executable, "-m", "kedge", "up", "--state-dir", str(tmp_path / "state"),
                 "--http-port", str(http_port), "--mqtt-port", str(taken),
                 "--api-port", str(api_port), "--cloud-port", str(cloud_port),
                 "--join-port", str(join_port)],
                stdout=out, stderr=out, cwd=ROOT,
            )  # fmt: skip
        children: list[psutil.Process] = []
        try:

            def started() -> bool:
                if up.poll() is not None:
                    raise RuntimeError(log.read_text())
                return "Ctrl-C stops everything" in log.read_text()

            wait_for(started, timeout=90, what="kedge up to start everything")
            since = time.monotonic()
            wait_for(lambda: _reporting(http_port) == PROTOCOLS, timeout=10,
                     what="all four sample devices reporting")  # fmt: skip
            print(f"devices reporting {time.monotonic() - since:.1f}s after start-up")  # noqa: T201
            assert f"port {taken} (MQTT) is in use" in log.read_text()
            kubeconfig = tmp_path / "state" / "apiserver" / "kubeconfig"

            def kubectl(*args: str) -> str:
                return subprocess.run(
                    [kubectl_binary(), "--kubeconfig", str(kubeconfig), *args],
                    capture_output=True, text=True, timeout=60, check=True,
                ).stdout  # fmt: skip

            pods = json.loads(kubectl("get", "pods", "-n", "kedge-system", "-o", "json"))
            assert len(pods["items"]) == 4
            assert {p["status"]["phase"] for p in pods["items"]} == {"Running"}

            def in_status() -> bool:
                try:  # made with the device's first report
                    found = json.loads(kubectl("get", "devicestatus", "thermostat-1", "-o", "json"))
                except subprocess.CalledProcessError:
                    return False
                return bool(found.get("status", {}).get("twins"))

            wait_for(in_status, timeout=30, what="reported twins in the DeviceStatus")
            children = psutil.Process(up.pid).children(recursive=True)
            names = " ".join(" ".join(c.cmdline()) for c in children)
            for part in ("mosquitto", "cloudcore.apiserver", "-m cloudcore", "mappers.modbus",
                         "simulate zigbee"):  # fmt: skip
                assert part in names, names
            assert _private(tmp_path / "state") == []  # 0600 files, 0700 directories
            device = json.loads(kubectl("get", "device", "thermostat-1", "-o", "json"))
            for entry in device["spec"]["properties"]:
                if entry["name"] == "setpoint":
                    entry["desired"] = {"value": "23"}
            kubectl("patch", "device", "thermostat-1", "--type", "merge", "-p",
                    json.dumps({"spec": {"properties": device["spec"]["properties"]}}))  # fmt: skip
        finally:
            up.send_signal(signal.SIGINT)
            code = up.wait(60)
    assert code == 0, log.read_text()[-3000:]
    left = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert not left, left
    # started again on the same state dir, what the operator set stands
    with log.open("ab") as out:
        again = subprocess.Popen(up.args, stdout=out, stderr=out, cwd=ROOT)
    try:
        wait_for(lambda: log.read_text().count("Ctrl-C stops everything") == 2, timeout=90,
                 what="kedge up to start again")  # fmt: skip
        assert "the samples and mapper DaemonSets are there already" in log.read_text()
        assert _setpoint(kubectl) == "23"
        url = f"http://127.0.0.1:{http_port}/v1/devices/default/thermostat-1/twin/setpoint"

        def edge_desired() -> str | None:
            try:
                return str(httpx.get(url, timeout=2).json()["desired"]["value"])
            except (httpx.HTTPError, KeyError, TypeError):
                return None

        wait_for(lambda: edge_desired() == "23", timeout=30,
                 what="the edge keeps the operator's value")  # fmt: skip
    finally:
        again.send_signal(signal.SIGINT)
        assert again.wait(60) == 0


@pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(b) for b in ("containerd", "runc", "ctr")),
    reason="needs root and containerd (make test installs it)",
)
def test_kedge_up_with_the_cri_runtime_runs_the_mappers_as_containers(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("http", "mqtt", "api", "cloud", "join", "stream")}
    forward = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    state = tmp_path / "state"
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        up = subprocess.Popen(
            [sys.executable, "-m", "kedge", "up", "--runtime", "cri", "--state-dir", str(state),
             "--http-port", str(ports["http"]), "--mqtt-port", str(ports["mqtt"]),
             "--api-port", str(ports["api"]), "--cloud-port", str(ports["cloud"]),
             "--join-port", str(ports["join"]), "--stream-port", str(ports["stream"])],
            stdout=out, stderr=out, cwd=ROOT,
        )  # fmt: skip
    try:
        wait_for(lambda: _reporting(ports["http"]) == PROTOCOLS, timeout=180,
                 what="all four sample devices reporting, mappers in containers")  # fmt: skip
        kubeconfig = state / "apiserver" / "kubeconfig"
        listed = subprocess.run(
            [kubectl_binary(), "--kubeconfig", str(kubeconfig), "get", "pods", "-n",
             "kedge-system", "-o", "json"], capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        ids = [c["containerID"] for p in json.loads(listed)["items"]
               for c in p["status"]["containerStatuses"]]  # fmt: skip
        assert len(ids) == 4 and all(i.startswith("containerd://") for i in ids), ids
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(60)
    assert up.returncode == 0, log.read_text()[-3000:]
    assert not Path("/run/kedge").exists()
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == forward
