"""A `kedge cloudcore` process for tests (against a `kedge apiserver`), and edges that join it
with a token from the real `kedge token create`."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.apiserver import ApiServerProcess
from harness.support import ROOT, EdgeProcess, free_port, fresh, port_open, ready_or_ended


@dataclass
class CloudProcess:
    apiserver: ApiServerProcess
    state: Path
    port: int = field(default_factory=free_port)
    join_port: int = field(default_factory=free_port)
    stream_port: int = field(default_factory=free_port)
    extra: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> CloudProcess:
        self.state.mkdir(parents=True, exist_ok=True)
        fresh(self.process)
        with (self.state / "cloudcore.log").open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cloudcore", "--kubeconfig", str(self.apiserver.kubeconfig),
                 "--state-dir", str(self.state), "--port", str(self.port),
                 "--join-port", str(self.join_port), "--stream-port", str(self.stream_port),
                 *self.extra],
                stdout=log, stderr=log, cwd=ROOT,
            )  # fmt: skip
        ready_or_ended(self.process, lambda: port_open(self.port) and port_open(self.join_port),
                       30, "CloudHub and the join service")  # fmt: skip
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(20)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    @property
    def join_url(self) -> str:
        return f"https://127.0.0.1:{self.join_port}"

    def token(self, *flags: str) -> str:
        made = subprocess.run(
            [sys.executable, "-m", "kedge", "token", "create", "--state-dir", str(self.state),
             *flags],
            capture_output=True, text=True, check=True, cwd=ROOT, timeout=30,
        )  # fmt: skip
        return made.stdout.strip()

    @property
    def url(self) -> str:
        return f"wss://127.0.0.1:{self.port}"

    def replica(self, state: Path, *flags: str) -> CloudProcess:
        """Another cloudcore against the same API server sharing this one's CA (started)."""
        state.mkdir(parents=True, exist_ok=True)
        shutil.copytree(self.state / "pki", state / "pki")
        return CloudProcess(self.apiserver, state, extra=flags or self.extra).start()

    def edge(self, state: Path, mqtt_url: str, node: str = "edge-node-1",
             replicas: tuple[CloudProcess, ...] = (), **kw: Any) -> EdgeProcess:  # fmt: skip
        """An edgecore that joins this cloud with a fresh token made for its node (and
        connects to any of `replicas` too)."""
        urls = ",".join(c.url for c in (self, *replicas))
        extra = ["--cloud", urls, "--join", self.join_url,
                 "--token", self.token("--node", node)]  # fmt: skip
        return EdgeProcess(state, node=node, mqtt_url=mqtt_url, extra=extra, **kw)

    def get(self, *what: str) -> dict[str, Any] | None:
        """`kubectl get WHAT -o json`, or None when it fails (not found yet)."""
        got = self.apiserver.kubectl("get", *what, "-o", "json", check=False)
        return dict(json.loads(got.stdout)) if got.returncode == 0 else None

    def device(self, name: str) -> dict[str, Any]:
        got = self.apiserver.kubectl("get", "device", name, "-o", "json")
        return dict(json.loads(got.stdout))

    def reported(self, name: str) -> dict[str, Any]:
        """The device's reported side: its DeviceStatus's status (kedge's CRDs serve the type,
        so cloudcore writes there), {} before the first report."""
        found = self.get("devicestatus", name)
        return dict((found or {}).get("status") or {})

    def log(self) -> str:
        path = self.state / "cloudcore.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


@contextlib.contextmanager
def running_cloud(state: Path, *flags: str) -> Iterator[CloudProcess]:
    """An API server and a cloudcore (with `flags`) under `state`, stopped afterwards."""
    apiserver = ApiServerProcess(state / "apiserver").start()
    cloud = CloudProcess(apiserver, state / "cloudcore", extra=flags)
    try:
        yield cloud.start()
    finally:
        cloud.stop()
        apiserver.stop()
