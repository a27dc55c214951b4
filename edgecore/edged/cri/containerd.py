"""A private containerd for edged: config, root, state and sockets under one directory, nothing in
/etc touched, stopped with edgecore.

Two settings this kind of machine needs (see the CRI notes): `restrict_oom_score_adj` (without
CAP_SYS_RESOURCE every sandbox fails to start otherwise) and runc's state under our directory.
containerd 1.6 still makes `/run/containerd/{s,fifo}` for its shims, and the CRI plugin a `k8s.io`
cgroup parent per controller: removed on stop when empty. It dies with edgecore; its containers'
shims do not, so a new containerd finds them running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
from pathlib import Path

import grpc

from kedge.cri import pb, services
from kedge.errors import PermanentError
from kedge.process import SOCKET_PATH_MAX, die_with_parent, write_private

log = logging.getLogger("kedge.edged")
SHIM_DIRS = (Path("/run/containerd/s"), Path("/run/containerd/fifo"), Path("/run/containerd"))
CGROUPS = Path("/sys/fs/cgroup")
CGROUP_PARENT = "k8s.io"  # where the CRI plugin puts pods without a cgroup parent of their own
READY_TIMEOUT = 30.0  # seconds for a starting containerd to answer (it takes about 0.1 s)


def config(base: Path, run: Path, sandbox_image: str, cni_bin: Path, cni_conf: Path) -> str:
    return f"""version = 2
root = "{base / "root"}"
state = "{base / "state"}"
[grpc]
  address = "{run / "containerd.sock"}"
[ttrpc]
  address = "{run / "containerd.sock.ttrpc"}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{run / "runc"}"
        BinaryName = "{shutil.which("runc") or "/usr/sbin/runc"}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni_bin}"
    conf_dir = "{cni_conf}"
"""


class Containerd:
    def __init__(
        self,
        base: Path,
        sandbox_image: str,
        cni_bin: Path = Path("/usr/lib/cni"),
        run: Path | None = None,
    ) -> None:
        """`run`: where the sockets go (default `base/run`; a socket path may not exceed 107
        bytes)."""
        self.base, self.sandbox_image, self.cni_bin = base.absolute(), sandbox_image, cni_bin
        self.run = run or self.base / "run"
        self.socket = self.run / "containerd.sock"
        if len(str(self.socket).encode()) > SOCKET_PATH_MAX:
            raise PermanentError(f"containerd socket path {self.socket} is too long for a socket")
        self._process: asyncio.subprocess.Process | None = None

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket}"

    async def start(self) -> None:
        binary = shutil.which("containerd")
        if binary is None:
            raise PermanentError("containerd is not installed (apt-get install containerd runc)")
        for sub in ("root", "state", "cni/net.d"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        self.run.mkdir(parents=True, exist_ok=True)
        os.chmod(self.base, 0o700)
        os.chmod(self.run, 0o700)
        path = self.base / "containerd.toml"
        cni_conf = self.base / "cni" / "net.d"
        write_private(path, config(self.base, self.run, self.sandbox_image, self.cni_bin, cni_conf))
        log_file = (self.base / "containerd.log").open("ab")
        self._process = await asyncio.create_subprocess_exec(
            binary, "--config", str(path), stdout=log_file, stderr=log_file,
            start_new_session=True, preexec_fn=die_with_parent(),
        )  # fmt: skip
        log_file.close()
        await self._ready()
        log.info("containerd started", extra={"endpoint": self.endpoint})

    async def _ready(self) -> None:
        """Version answers on the socket (or the process died: its log says why)."""
        async with grpc.aio.insecure_channel(f"unix:{self.socket}") as channel:
            stub = services.RuntimeServiceStub(channel)
            try:
                await stub.Version(
                    pb.VersionRequest(version="v1"), timeout=READY_TIMEOUT, wait_for_ready=True
                )
            except grpc.aio.AioRpcError as exc:
                tail = (self.base / "containerd.log").read_text(errors="replace")[-2000:]
                raise PermanentError(f"containerd did not start: {exc.details()}\n{tail}") from exc

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await process.wait()
        # what containerd makes outside our directory, removed when empty (a system
        # containerd's are not: its sockets and its pods' cgroups are in them)
        for made in [*SHIM_DIRS, *(d / CGROUP_PARENT for d in _controllers())]:
            with contextlib.suppress(OSError):
                made.rmdir()
        if self.run != self.base / "run":
            shutil.rmtree(self.run, ignore_errors=True)
            with contextlib.suppress(OSError):
                self.run.parent.rmdir()  # /run/kedge, when no other edgecore uses it


def _controllers() -> list[Path]:
    """Mounted cgroup hierarchies (v1 controllers, or the v2 root)."""
    if not CGROUPS.is_dir():
        return []
    if (CGROUPS / "cgroup.controllers").exists():
        return [CGROUPS]
    return [d for d in CGROUPS.iterdir() if d.is_dir() and not d.is_symlink()]
