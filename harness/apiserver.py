"""A `kedge apiserver` process for tests, with kubectl and the official Python client on it."""

from __future__ import annotations

import os
import shutil
import signal
import ssl
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml
from kubernetes import client, config

from harness.support import ROOT, free_port, fresh, ready_or_ended

SDK_KUBECTL = Path("/usr/lib/google-cloud-sdk/bin/kubectl.1.32")  # the OS package's 1.32


def kubectl_binary() -> str:
    """A real kubectl: the OS package's version-pinned binary, else the one on PATH or .venv."""
    if SDK_KUBECTL.exists():
        return str(SDK_KUBECTL)
    venv = Path(sys.executable).parent / "kubectl"
    found = shutil.which("kubectl") or (str(venv) if venv.exists() else None)
    if found is None:
        raise RuntimeError("kubectl is missing: `make test` installs it")
    return found


@dataclass
class ApiServerProcess:
    state: Path
    port: int = field(default_factory=free_port)
    extra: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None
    url_scheme: str = "https"  # http with --insecure

    @property
    def kubeconfig(self) -> Path:
        return self.state / "kubeconfig"

    @property
    def url(self) -> str:
        return f"{self.url_scheme}://127.0.0.1:{self.port}"

    def start(self) -> ApiServerProcess:
        self.state.mkdir(parents=True, exist_ok=True)
        fresh(self.process)
        with (self.state / "apiserver.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "cloudcore.apiserver", "--state-dir", str(self.state),
                    "--port", str(self.port), *self.extra,
                ],
                stdout=log, stderr=log, cwd=ROOT,
            )  # fmt: skip

        def up() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError((self.state / "apiserver.log").read_text())
            try:
                return httpx.get(f"{self.url}/healthz", verify=False).status_code == 200
            except httpx.HTTPError:
                return False

        ready_or_ended(self.process, up, 30, "API server")
        return self

    def stop(self, kill: bool = False) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            self.process.wait(20)

    def token(self) -> str:
        """The admin token, from the kubeconfig (the server keeps only its digest)."""
        kubeconfig = yaml.safe_load(self.kubeconfig.read_text())
        return str(kubeconfig["users"][0]["user"]["token"])

    def http(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.token()}"}
        context = ssl.create_default_context(cafile=str(self.state / "pki" / "ca.crt"))
        return httpx.Client(base_url=self.url, headers=headers, verify=context)

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [kubectl_binary(), "--kubeconfig", str(self.kubeconfig), "--cache-dir",
             str(self.state / "kube-cache"), *args],
            input=stdin, capture_output=True, text=True, timeout=60,
            env={**os.environ, "KUBECONFIG": str(self.kubeconfig)},
        )  # fmt: skip
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
        return result

    def api_client(self) -> client.ApiClient:
        made: client.ApiClient = config.new_client_from_config(config_file=str(self.kubeconfig))
        return made
