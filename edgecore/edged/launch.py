"""How one attempt of a container runs: the seam between a container's life (restarts, probes,
status, in `container`) and the runtime that runs it (host processes here, CRI in `cri`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import Any, Protocol

from edgecore.edged import probes
from edgecore.edged.execs import ExecProcess, HostExec
from edgecore.edged.podspec import ContainerPlan, Probe
from kedge.process import die_with_parent


class LaunchError(Exception):
    """The attempt could not start: kubelet's waiting/terminated reason and a message."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


class Running(Protocol):
    id: str  # containerID as the pod status shows it

    async def wait(self) -> tuple[int, str]:
        """(exit code, reason) once it ended: Completed, Error, OOMKilled, ..."""

    async def terminate(self, grace: float) -> None:
        """SIGTERM, SIGKILL after `grace` seconds; returns once it is gone."""

    async def probe(self, probe: Probe) -> bool:
        """One liveness/readiness check where the container runs."""

    async def exec(self, argv: list[str], stdin: bool, tty: bool) -> ExecProcess:
        """A command started where the container runs (`kubectl exec`), or ExecError."""


class Launcher(Protocol):
    async def launch(self, plan: ContainerPlan, attempt: int) -> Running: ...

    def log_path(self, container: str, previous: bool = False) -> Path: ...


class PodRuntime(Protocol):
    """Where a pod's containers run: `open` prepares the pod (a CRI sandbox, say) and gives the
    launcher its containers use; `close` releases what `open` made, once they stopped."""

    async def open(self, pod: dict[str, Any], pod_dir: Path) -> Launcher: ...

    async def close(self, launcher: Launcher) -> None: ...

    def pod_ip(self, launcher: Launcher) -> str: ...

    async def sweep(self) -> None:
        """The node's pods started: what an earlier run left that no pod took can go."""

    async def shutdown(self) -> None:
        """Every pod stopped: release the runtime itself."""


class ProcessRuntime:
    """Pods as host processes: nothing to prepare per pod; they share the node's address."""

    async def open(self, pod: dict[str, Any], pod_dir: Path) -> Launcher:
        return ProcessLauncher(pod_dir)

    async def close(self, launcher: Launcher) -> None:
        return None

    def pod_ip(self, launcher: Launcher) -> str:
        return "127.0.0.1"

    async def sweep(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None


class _Process:
    def __init__(self, process: asyncio.subprocess.Process, plan: ContainerPlan, cwd: str) -> None:
        self.process, self.id = process, f"process://{process.pid}"
        self.plan, self.cwd = plan, cwd

    async def probe(self, probe: Probe) -> bool:
        return await probes.check(probe, self.plan.env, self.cwd)

    async def exec(self, argv: list[str], stdin: bool, tty: bool) -> ExecProcess:
        return await HostExec.start(argv, self.plan.env, self.cwd, stdin, tty)

    async def wait(self) -> tuple[int, str]:
        code = await self.process.wait()
        code = 128 - code if code < 0 else code  # killed by signal N -> 128+N, as runtimes say
        return code, "Completed" if code == 0 else "Error"

    async def terminate(self, grace: float) -> None:
        process = self.process
        if process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(process.wait()), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


class ProcessLauncher:
    """A container as a host process in its own session, dying with edgecore
    (PR_SET_PDEATHSIG); its output in `<pod dir>/logs/<name>.log` (the previous one `.log.1`)."""

    def __init__(self, pod_dir: Path) -> None:
        self.pod_dir = pod_dir

    def log_path(self, container: str, previous: bool = False) -> Path:
        return self.pod_dir / "logs" / f"{container}.log{'.1' if previous else ''}"

    async def launch(self, plan: ContainerPlan, attempt: int) -> Running:
        path = self.log_path(plan.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and attempt > 0:
            os.replace(path, self.log_path(plan.name, previous=True))
        cwd = plan.working_dir or str(self.pod_dir)
        with path.open("ab") as out:
            try:
                process = await asyncio.create_subprocess_exec(
                    *plan.argv, env=dict(plan.env), cwd=cwd,
                    stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True, preexec_fn=die_with_parent(),
                )  # fmt: skip
            except OSError as exc:
                message = f"failed to start {plan.argv[0]!r}: {exc.strerror or exc}"
                raise LaunchError("StartError", message) from exc
        return _Process(process, plan, cwd)
