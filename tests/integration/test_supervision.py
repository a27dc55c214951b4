"""Supervision both ways. Under `kedge up`, a killed API server, cloudcore or simulator comes
back by itself and a desired value patched afterwards reaches the device; `kill -9` of `kedge
up` or of a standalone edgecore leaves none of their processes, and a new start on the same
state dir comes up on the same ports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from edgecore.broker import find_mosquitto
from harness.apiserver import kubectl_binary
from harness.support import ROOT, EdgeProcess, free_port, modbus_register, port_open, wait_for
from mappers.registry import PROTOCOLS as REGISTERED

PROTOCOLS = set(REGISTERED)


class Up:
    """`kedge up` on a state dir, with its own ports (simulators: the ports it picks)."""

    def __init__(self, tmp_path: Path) -> None:
        self.state, self.log = tmp_path / "state", tmp_path / "up.log"
        self.ports = {flag: free_port() for flag in ("--http-port", "--api-port",
                      "--cloud-port", "--join-port", "--stream-port", "--mqtt-port")}  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Up:
        argv = [sys.executable, "-m", "kedge", "up", "--state-dir", str(self.state)]
        for flag, port in self.ports.items():
            argv += [flag, str(port)]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(argv, stdout=out, stderr=out, cwd=ROOT)
        process = self.process
        starts = self.log.read_text().count("Ctrl-C stops everything")

        def started() -> bool:
            if process.poll() is not None:
                raise RuntimeError(self.log.read_text()[-3000:])
            return self.log.read_text().count("Ctrl-C stops everything") > starts

        wait_for(started, timeout=120, what="kedge up to start everything")
        wait_for(lambda: self.reporting() == PROTOCOLS, timeout=60, what="devices reporting")
        return self

    def reporting(self) -> set[str]:
        url = f"http://127.0.0.1:{self.ports['--http-port']}/v1/devices"
        try:
            items = httpx.get(url, timeout=2).json()["items"]
        except httpx.HTTPError:
            return set()
        return {d["protocol"] for d in items if any(t.get("reported") for t in d["twins"])}

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        kubeconfig = self.state / "apiserver" / "kubeconfig"
        return subprocess.run([kubectl_binary(), "--kubeconfig", str(kubeconfig), *args],
                              capture_output=True, text=True, timeout=60, check=check)  # fmt: skip

    def tree(self) -> list[psutil.Process]:
        assert self.process is not None
        return psutil.Process(self.process.pid).children(recursive=True)

    def child(self, part: str) -> psutil.Process:
        found = [c for c in self.tree() if part in " ".join(c.cmdline())]
        assert len(found) == 1, [c.cmdline() for c in found]
        return found[0]

    def listening(self) -> set[tuple[str, int]]:
        procs = {c.pid: " ".join(c.cmdline()[1:4]) for c in self.tree()}
        if self.process:
            procs[self.process.pid] = "up"
        return {(procs[c.pid], c.laddr.port) for c in psutil.net_connections("tcp")
                if c.status == psutil.CONN_LISTEN and c.pid in procs}  # fmt: skip

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(60)


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    made = Up(tmp_path)
    try:
        yield made
    finally:
        made.stop()


def _kill_and_wait_back(up: Up, part: str, name: str) -> None:
    before = up.log.read_text().count(f"{name} restarted")
    os.kill(up.child(part).pid, signal.SIGKILL)
    wait_for(lambda: up.log.read_text().count(f"{name} restarted") > before, timeout=30,
             what=f"{name} restarted by kedge up")  # fmt: skip


@pytest.mark.timeout(300)
def test_kedge_up_restarts_what_dies_and_a_killed_up_leaves_nothing(up: Up) -> None:
    up.start()
    modbus_port = json.loads((up.state / "up.ports.json").read_text())["modbus"][1]
    _kill_and_wait_back(up, "cloudcore.apiserver", "the API server")
    wait_for(lambda: up.kubectl("get", "devices", check=False).returncode == 0, timeout=30,
             what="kubectl answered again")  # fmt: skip
    _kill_and_wait_back(up, "-m cloudcore --kubeconfig", "cloudcore")
    _kill_and_wait_back(up, "simulate modbus", "the modbus simulator")
    assert "cloudcore stopped (killed by SIGKILL); restarting in" in up.log.read_text()
    # a desired value patched after all that reaches the (restarted) device
    device = json.loads(up.kubectl("get", "device", "thermostat-1", "-o", "json").stdout)
    properties = [{**p, "desired": {"value": "27"}} if p["name"] == "setpoint" else p
                  for p in device["spec"]["properties"]]  # fmt: skip
    up.kubectl("patch", "device", "thermostat-1", "--type", "merge",
               "-p", json.dumps({"spec": {"properties": properties}}))  # fmt: skip
    wait_for(lambda: modbus_register(modbus_port) == 27, timeout=60, what="the patch on the device")

    ports = up.listening()
    everything = up.tree()
    assert up.process is not None
    up.process.kill()  # kill -9 of kedge up: every process it started dies with it
    up.process.wait(10)
    wait_for(lambda: not [p for p in everything if p.is_running()
                          and p.status() != psutil.STATUS_ZOMBIE], timeout=15,
             what="no process of the killed kedge up left")  # fmt: skip
    up.start()  # the same state dir: the same ports, everything again
    assert up.listening() == ports, (sorted(up.listening()), sorted(ports))
    assert "is in use" not in up.log.read_text()


def test_a_killed_standalone_edgecore_leaves_nothing_and_restarts_on_its_ports(
    tmp_path: Path,
) -> None:
    broker_port = free_port()
    edge = EdgeProcess(tmp_path / "state", broker_port=broker_port).start()
    assert edge.process is not None
    mosquitto = psutil.Process(edge.process.pid).children()
    assert [p.name() for p in mosquitto] == ["mosquitto"]
    edge.kill()  # kill -9
    wait_for(lambda: not port_open(broker_port), timeout=10, what="its mosquitto gone")
    assert not mosquitto[0].is_running() or mosquitto[0].status() == psutil.STATUS_ZOMBIE
    edge.broker_port = broker_port
    edge.start()  # the same state dir and ports
    try:
        assert port_open(broker_port) and edge.healthy()
    finally:
        edge.stop()


def test_a_restarted_edgecore_ends_a_stale_mosquitto_of_its_state_dir(tmp_path: Path) -> None:
    """A mosquitto that outlived its edgecore (started by an older kedge, or reparented) holds
    the port; the next edgecore on that state dir ends it instead of failing to bind."""
    broker_port = free_port()
    edge = EdgeProcess(tmp_path / "state", broker_port=broker_port).start()
    edge.stop()
    broker = tmp_path / "state" / "broker"
    argv = [find_mosquitto(), "-c", str(broker / "mosquitto.conf")]
    stray = subprocess.Popen(argv, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        (broker / "mosquitto.pid").write_text(json.dumps({"mosquitto": [stray.pid, argv]}))
        wait_for(lambda: port_open(broker_port), what="the stray mosquitto listening")
        edge.start()
        stray.wait(10)  # ended by the new edgecore
        assert edge.healthy()
    finally:
        if stray.poll() is None:
            stray.kill()
        edge.stop()
