"""Pods as containers through CRI: one sandbox per pod, its containers created and started in it.

A container's end is found by one ListContainers a second over the whole node while anything
runs (kubelet's PLEG relists the same way; CRI v1 as containerd 1.6 serves it has no event
stream); idle, nothing is asked. Logs are CRI's files, `<pod dir>/logs/<container>/<attempt>.log`.
A pod on the host network shares the node's address; any other gets its own on the node's CNI
bridge (`network`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc

from edgecore.edged import probes
from edgecore.edged.cri.client import CriClient, sandbox_config
from edgecore.edged.cri.containerd import Containerd
from edgecore.edged.cri.images import import_archive, pack, pause_rootfs
from edgecore.edged.cri.network import PodNetwork
from edgecore.edged.cri.resources import linux_resources
from edgecore.edged.cri.streaming import CriExec
from edgecore.edged.execs import ExecError, ExecProcess
from edgecore.edged.launch import Launcher, LaunchError, Running
from edgecore.edged.podspec import ContainerPlan, Probe
from kedge.cri import pb
from kedge.errors import PermanentError
from kedge.process import write_private

log = logging.getLogger("kedge.edged")
PAUSE = "localhost/kedge/pause:1"
UID, OWNER, OWNED = "io.kubernetes.pod.uid", "kedge.io/managed-by", "edged"
EXEC_TIMEOUT = 10.0  # seconds for the runtime to hand out an exec's streaming URL
RELIST = 1.0  # seconds between relists while containers run (kubelet's PLEG period)


def run_dir(state_dir: Path) -> Path:
    """Sockets need short paths: under /run, named after the state dir."""
    digest = hashlib.sha256(str(state_dir.absolute()).encode()).hexdigest()[:12]
    return Path("/run/kedge") / digest


class CriRuntime:
    def __init__(self, state_dir: Path, endpoint: str | None = None,
                 preload: list[Path] | None = None) -> None:  # fmt: skip
        """`endpoint`: an existing CRI runtime (unix:///...); None: a private containerd.
        `preload`: image archives imported into a private containerd at start, each once."""
        self.state_dir, self.preload = state_dir, preload or []
        self.network = (
            None if endpoint else PodNetwork(state_dir, state_dir / "containerd" / "cni" / "net.d")
        )
        self.containerd = None if endpoint else Containerd(
            state_dir / "containerd", PAUSE, run=run_dir(state_dir))  # fmt: skip
        self.endpoint = endpoint or (self.containerd.endpoint if self.containerd else "")
        self.client: CriClient | None = None
        self._exits: dict[str, asyncio.Event] = {}
        self._relister: asyncio.Task[None] | None = None
        self._leftover: dict[str, str] = {}  # pod uid -> a ready sandbox found at start
        self._dead: list[str] = []  # sandboxes found stopped at start

    async def start(self) -> None:
        """Ready to run pods, or (having stopped what it started) PermanentError saying why."""
        try:
            if self.containerd is not None and self.network is not None:
                self.network.write()
                await self.containerd.start()
                await self._pause_image(self.containerd.socket)
                await self._preload(self.containerd.socket)
            self.client = CriClient(self.endpoint)
            version = await self.client.version()
            owned = pb.PodSandboxFilter(label_selector={OWNER: OWNED})
            listed = await self.client.runtime.ListPodSandbox(
                pb.ListPodSandboxRequest(filter=owned), timeout=60)  # fmt: skip
            self._leftover = {b.labels.get(UID, "") or b.id: b.id for b in listed.items
                              if b.state == pb.SANDBOX_READY}  # fmt: skip
            self._dead = [b.id for b in listed.items if b.state != pb.SANDBOX_READY]
        except (grpc.aio.AioRpcError, OSError, RuntimeError) as exc:
            await self.shutdown()
            reason = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else str(exc)
            raise PermanentError(f"CRI runtime at {self.endpoint}: {reason}") from exc
        except BaseException:
            await self.shutdown()
            raise
        log.info("CRI runtime ready", extra={"runtime": version.runtime_name,
                 "version": version.runtime_version, "endpoint": self.endpoint})  # fmt: skip

    async def _pause_image(self, socket: Path) -> None:
        """The sandbox image, built here and imported once (no registry needed)."""
        client = CriClient(self.endpoint)
        try:
            if await client.image_present(PAUSE):
                return
        finally:
            await client.close()
        with tempfile.TemporaryDirectory(dir=self.state_dir) as tmp:
            rootfs = Path(tmp) / "rootfs"
            rootfs.mkdir()
            await asyncio.to_thread(pause_rootfs, rootfs)
            archive = pack(rootfs, PAUSE, Path(tmp) / "pause.tar", ["/pause"])
            await asyncio.to_thread(import_archive, socket, archive)

    async def _preload(self, socket: Path) -> None:
        """Archives not imported yet (by size and time: a rebuilt archive goes in again)."""
        done = self.state_dir / "containerd" / "imported"
        seen = set(done.read_text().split("\n")) if done.exists() else set()
        for archive in self.preload:
            stat = archive.stat()
            key = f"{archive.absolute()}:{stat.st_size}:{stat.st_mtime_ns}"
            if key not in seen:
                log.info("importing images", extra={"archive": str(archive)})
                await asyncio.to_thread(import_archive, socket, archive)
                seen.add(key)
                write_private(done, "\n".join(sorted(seen)))

    async def shutdown(self) -> None:
        """After every pod stopped: the relister, the connection, a private containerd."""
        if self._relister is not None:
            self._relister.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._relister
        if self.client is not None:
            await self.client.close()
        if self.containerd is not None:
            await self.containerd.stop()
        if self.network is not None:
            self.network.remove()

    @property
    def cri(self) -> CriClient:
        assert self.client is not None, "CriRuntime.start() first"
        return self.client

    # ---- the PodRuntime interface --------------------------------------------------------

    async def open(self, pod: dict[str, Any], pod_dir: Path) -> Launcher:
        """The pod's sandbox: the one a killed edgecore left running (adopted with its running
        containers), or a new one."""
        meta = pod.get("metadata") or {}
        logs = pod_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        host = bool((pod.get("spec") or {}).get("hostNetwork"))
        config = sandbox_config(str(meta.get("name", "")), str(meta.get("namespace", "default")),
                                str(meta.get("uid", "")), str(logs), host_network=host,
                                labels={OWNER: OWNED})  # fmt: skip
        found = self._leftover.pop(str(meta.get("uid", "")), None)
        try:
            if found is not None:
                running = [c for c in await self.cri.containers(found)
                           if c.state == pb.CONTAINER_RUNNING]  # fmt: skip
                log.info("pod adopted from the runtime", extra={"pod": meta.get("name"),
                         "sandbox": found, "containers": len(running)})  # fmt: skip
                sandbox, adopt = found, running
            else:
                sandbox, adopt = await self.cri.run_sandbox(config), []
            ip = "" if host else (await self.cri.sandbox_status(sandbox)).network.ip
        except grpc.aio.AioRpcError as exc:
            raise LaunchError("CreatePodSandboxError", str(exc.details())) from exc
        return CriLauncher(self, sandbox, config, logs, adopt, ip)

    async def sweep(self) -> None:
        """After the node's pods started: sandboxes left by an earlier run that no pod took."""
        leftover, self._leftover, dead, self._dead = self._leftover, {}, self._dead, []
        for sandbox in [*leftover.values(), *dead]:
            with contextlib.suppress(grpc.aio.AioRpcError):
                await self._remove(sandbox)

    async def close(self, launcher: Launcher) -> None:
        """The pod's containers stopped: they, and its sandbox, go."""
        assert isinstance(launcher, CriLauncher)
        await self._remove(launcher.sandbox)

    async def _remove(self, sandbox: str) -> None:
        for container in await self.cri.containers(sandbox):
            with contextlib.suppress(grpc.aio.AioRpcError):
                await self.cri.stop_container(container.id, 0)
                await self.cri.remove_container(container.id)
        await self.cri.stop_sandbox(sandbox)
        await self.cri.remove_sandbox(sandbox)

    def pod_ip(self, launcher: Launcher) -> str:
        """The sandbox's address; a host-network pod has the node's."""
        return getattr(launcher, "ip", "") or "127.0.0.1"

    # ---- exits ---------------------------------------------------------------------------

    def watch(self, container_id: str) -> asyncio.Event:
        event = self._exits.setdefault(container_id, asyncio.Event())
        if self._relister is None or self._relister.done():
            self._relister = asyncio.create_task(self._relist(), name="cri relist")
        return event

    async def _relist(self) -> None:
        while self._exits:
            try:
                listed = await self.cri.runtime.ListContainers(pb.ListContainersRequest(),
                                                               timeout=30)  # fmt: skip
            except grpc.aio.AioRpcError as exc:
                log.warning("CRI relist failed: %s", exc.details())
            else:
                states = {c.id: c.state for c in listed.containers}
                for container_id, event in list(self._exits.items()):
                    if states.get(container_id, pb.CONTAINER_EXITED) == pb.CONTAINER_EXITED:
                        event.set()
                        del self._exits[container_id]
            await asyncio.sleep(RELIST)  # the relist period, while containers run


class CriRunning:
    def __init__(self, runtime: CriRuntime, container_id: str, ip: str = "") -> None:
        """`ip`: the pod's own address, where its httpGet and tcpSocket probes go."""
        self.runtime, self.id = runtime, f"containerd://{container_id}"
        self.container_id, self.ip = container_id, ip
        self.exited = runtime.watch(container_id)

    async def probe(self, probe: Probe) -> bool:
        """exec runs in the container (CRI's ExecSync); http and tcp go to the pod's address."""
        if probe.action != "exec":
            host = self.ip if self.ip and probe.host == "127.0.0.1" else probe.host
            return await probes.check(replace(probe, host=host), {}, "")
        request = pb.ExecSyncRequest(container_id=self.container_id, cmd=list(probe.command),
                                     timeout=max(1, round(probe.timeout)))  # fmt: skip
        try:
            reply = await self.runtime.cri.runtime.ExecSync(request, timeout=probe.timeout + 5)
        except grpc.aio.AioRpcError:
            return False
        return int(reply.exit_code) == 0

    async def exec(self, argv: list[str], stdin: bool, tty: bool) -> ExecProcess:
        """CRI's Exec: the runtime's streaming server runs the command in the container."""
        request = pb.ExecRequest(container_id=self.container_id, cmd=argv, tty=tty, stdin=stdin,
                                 stdout=True, stderr=not tty)  # fmt: skip
        try:
            reply = await self.runtime.cri.runtime.Exec(request, timeout=EXEC_TIMEOUT)
        except grpc.aio.AioRpcError as exc:
            raise ExecError(f"the runtime refused the exec: {exc.details()}") from exc
        return await CriExec.open(reply.url, tty)

    async def wait(self) -> tuple[int, str]:
        await self.exited.wait()
        status = await self.runtime.cri.container_status(self.container_id)
        code = int(status.exit_code)
        return code, status.reason or ("Completed" if code == 0 else "Error")

    async def terminate(self, grace: float) -> None:
        with contextlib.suppress(grpc.aio.AioRpcError):  # already gone
            await self.runtime.cri.stop_container(self.container_id, max(0, round(grace)))
        await self.exited.wait()


class CriLauncher:
    """A pod's containers in its sandbox; each attempt a new container, the previous one (kept
    for `--previous` logs' sake only as its log file) removed."""

    def __init__(self, runtime: CriRuntime, sandbox: str, config: Any, logs: Path,
                 running: list[Any] | None = None, ip: str = "") -> None:  # fmt: skip
        """`running`: containers found running in an adopted sandbox, taken over as they are;
        `ip`: the pod's own address ("" on the host network)."""
        self.runtime, self.sandbox, self.config, self.logs = runtime, sandbox, config, logs
        self.ip = ip
        self.attempts: dict[str, int] = {}
        self.previous: dict[str, str] = {}  # container name -> the last attempt's container id
        self.adopt = {c.metadata.name: c for c in running or []}

    def log_path(self, container: str, previous: bool = False) -> Path:
        attempt = self.attempts.get(container, 0) - (1 if previous else 0)
        return self.logs / container / f"{max(attempt, 0)}.log"

    async def launch(self, plan: ContainerPlan, attempt: int) -> Running:
        adopted = self.adopt.pop(plan.name, None)
        if adopted is not None:  # running since before edgecore restarted: not started again
            self.attempts[plan.name] = int(adopted.metadata.attempt)
            self.previous[plan.name] = adopted.id
            return CriRunning(self.runtime, adopted.id, self.ip)
        cri = self.runtime.cri
        await _ensure_image(cri, plan, self.config)
        old = self.previous.pop(plan.name, None)
        if old is not None:
            with contextlib.suppress(grpc.aio.AioRpcError):
                await cri.remove_container(old)
        self.attempts[plan.name] = attempt
        (self.logs / plan.name).mkdir(parents=True, exist_ok=True)
        try:
            config = container_config(plan, attempt, host_network=not self.ip)
            container_id = await cri.create_container(self.sandbox, config, self.config)
            await cri.start_container(container_id)
        except (grpc.aio.AioRpcError, ValueError) as exc:
            reason = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else str(exc)
            raise LaunchError("CreateContainerError", str(reason)) from exc
        self.previous[plan.name] = container_id
        return CriRunning(self.runtime, container_id, self.ip)


async def _ensure_image(cri: CriClient, plan: ContainerPlan, sandbox: Any) -> None:
    """The image as its pull policy asks. A node offline keeps running what it has: an Always
    whose pull fails uses the image present (and says so)."""
    try:
        present = await cri.image_present(plan.image)
    except grpc.aio.AioRpcError as exc:
        raise LaunchError("ErrImageInspect", f"image {plan.image!r}: {exc.details()}") from exc
    if plan.pull_policy == "Never" or (present and plan.pull_policy == "IfNotPresent"):
        if not present:
            raise LaunchError("ErrImageNeverPull", f'Container image "{plan.image}" is not '
                              "present with pull policy of Never")  # fmt: skip
        return
    try:
        await cri.pull(plan.image, sandbox)
    except grpc.aio.AioRpcError as exc:
        if not present:
            raise LaunchError("ErrImagePull", f"image {plan.image!r}: {exc.details()}") from exc
        log.warning("pull failed, running the image present: %s", exc.details(),
                    extra={"image": plan.image})  # fmt: skip


def container_config(plan: ContainerPlan, attempt: int, host_network: bool) -> Any:
    """The container as CRI takes it: command and args as the pod gave them (the image's
    entrypoint and cmd otherwise), environment, bind mounts, resource limits."""
    security = pb.LinuxContainerSecurityContext(
        namespace_options=pb.NamespaceOption(
            network=pb.NODE if host_network else pb.POD, pid=pb.CONTAINER
        )
    )
    return pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name=plan.name, attempt=attempt),
        image=pb.ImageSpec(image=plan.image), command=list(plan.command), args=list(plan.args),
        working_dir=plan.working_dir,
        envs=[pb.KeyValue(key=k, value=v.encode()) for k, v in plan.env.items()],
        mounts=[pb.Mount(container_path=inside, host_path=outside)
                for inside, outside in plan.binds],
        log_path=f"{plan.name}/{attempt}.log",
        linux=pb.LinuxContainerConfig(resources=linux_resources(plan.resources),
                                      security_context=security),
    )  # fmt: skip
