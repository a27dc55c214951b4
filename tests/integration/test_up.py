"""`kedge up` (what `make up` runs): sample devices served, busy ports avoided, Ctrl-C stops all."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import psutil

from tests.apiserver import kubectl_binary
from tests.support import ROOT, free_port, wait_for


def test_kedge_up_serves_samples_avoids_busy_port_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    http_port, api_port = free_port(), free_port()
    with socket.socket() as busy:  # e.g. the system's own mosquitto on 1883
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        log = tmp_path / "up.log"
        with log.open("wb") as out:
            up = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "kedge",
                    "up",
                    "--state-dir",
                    str(tmp_path / "state"),
                    "--http-port",
                    str(http_port),
                    "--mqtt-port",
                    str(taken),
                    "--api-port",
                    str(api_port),
                ],
                stdout=out,
                stderr=out,
                cwd=ROOT,
            )
        try:

            def ready() -> bool:
                if up.poll() is not None:
                    raise RuntimeError(log.read_text())
                try:
                    return httpx.get(f"http://127.0.0.1:{http_port}/healthz").status_code == 200
                except httpx.HTTPError:
                    return False

            wait_for(ready, timeout=30, what="kedge up")
            items = httpx.get(f"http://127.0.0.1:{http_port}/v1/devices").json()["items"]
            assert {d["protocol"] for d in items} == {"bluetooth", "modbus", "opcua", "zigbee"}
            assert f"port {taken} (MQTT) is in use" in log.read_text()
            kubeconfig = tmp_path / "state" / "apiserver" / "kubeconfig"
            wait_for(kubeconfig.exists, timeout=30, what="kubeconfig")
            crds = subprocess.run(
                [kubectl_binary(), "--kubeconfig", str(kubeconfig), "get", "crds", "-o", "name"],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert "devices.devices.kubeedge.io" in crds.stdout, crds.stderr
            children = psutil.Process(up.pid).children(recursive=True)
            assert any("mosquitto" in c.name() for c in children)
            assert any("cloudcore.apiserver" in " ".join(c.cmdline()) for c in children)
        finally:
            up.send_signal(signal.SIGINT)
            code = up.wait(20)
    assert code == 0, log.read_text()
    assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)
