"""One container's life: started, probed, restarted with back-off, stopped.

Its state is what kubelet reports (waiting / running / terminated, lastState, restartCount,
ready, started). Restarts follow the pod's restartPolicy with CrashLoopBackOff: the first
restart is immediate, then `base` seconds doubling up to five minutes; ten minutes of running
resets it. Each attempt runs through a `Launcher` (`edgecore.edged.launch`): a host process, or
a container through CRI.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgecore.edged.execs import ExecError, ExecProcess
from edgecore.edged.launch import Launcher, LaunchError, ProcessLauncher, Running
from edgecore.edged.podspec import ContainerPlan, Probe
from kedge.backoff import Backoff

log = logging.getLogger("kedge.edged")
MAX_BACKOFF = 300.0
RESET_AFTER = 600.0


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Container:
    def __init__(
        self,
        pod: str,
        plan: ContainerPlan,
        policy: str,
        pod_dir: Path,
        backoff: float,
        on_change: Callable[[], None],
        launcher: Launcher | None = None,
    ) -> None:
        """`launcher`: the runtime that runs each attempt (default: host processes)."""
        self.pod, self.plan, self.policy, self.pod_dir = pod, plan, policy, pod_dir
        self.launcher: Launcher = launcher or ProcessLauncher(pod_dir)
        # CrashLoopBackOff: the first restart at once, then `backoff` doubling up to 5 minutes
        self.backoff = Backoff(backoff, MAX_BACKOFF, free=1, healthy_after=RESET_AFTER)
        self.on_change = on_change
        self.state: dict[str, Any] = {"waiting": {"reason": "ContainerCreating"}}
        self.last_state: dict[str, Any] = {}
        self.restarts = 0
        self.ready = False
        self.started = False
        self.container_id = ""
        self.grace = 30.0
        self._running: Running | None = None
        self._stopping = False
        self._replanned = asyncio.Event()
        self._wake = asyncio.Event()

    @property
    def name(self) -> str:
        return self.plan.name

    def log_path(self, previous: bool = False) -> Path:
        return self.launcher.log_path(self.name, previous)

    def replan(self, plan: ContainerPlan) -> None:
        """A new plan (config that was missing arrived): used for the next start."""
        self.plan = plan
        self._replanned.set()

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "image": self.plan.image,
            "imageID": "",
            "state": self.state,
            "lastState": self.last_state,
            "ready": self.ready,
            "started": self.started and "running" in self.state,
            "restartCount": self.restarts,
        }
        if self.container_id:
            out["containerID"] = self.container_id
        return out

    def _set(self, **state: Any) -> None:
        self.state = state
        self.on_change()

    async def run(self) -> None:
        while not self._stopping:
            if self.plan.error is not None:
                reason, message = self.plan.error
                self._set(waiting={"reason": reason, "message": message})
                self._replanned.clear()
                await self._replanned.wait()
                continue
            started = time.monotonic()
            code, reason = await self._run_once()
            if self._stopping:
                return
            if not self.restarts_after(code):
                self.on_change()
                await self._replanned.wait()  # finished for good (until the pod goes)
                self._replanned.clear()
                continue
            delay = self.backoff.next(time.monotonic() - started)
            if delay > 0:
                self._set(waiting={
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off {delay:g}s restarting failed container={self.name} "
                               f"pod={self.pod} ({reason})",
                })  # fmt: skip
                log.info("container restarts in %gs", delay,
                         extra={"pod": self.pod, "container": self.name})  # fmt: skip
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                if self._stopping:
                    return
            self.restarts += 1

    def restarts_after(self, code: int) -> bool:
        """Whether the pod's restartPolicy restarts this container after exit code `code`."""
        return self.policy == "Always" or (self.policy == "OnFailure" and code != 0)

    async def _run_once(self) -> tuple[int, str]:
        """Start an attempt and wait for it; (exit code, reason) once it is gone."""
        plan, started_at = self.plan, now()
        try:
            running = await self.launcher.launch(plan, self.restarts)
        except LaunchError as exc:
            self._terminated(128, exc.reason, started_at, exc.message)
            log.warning("%s", exc.message, extra={"pod": self.pod, "container": self.name})
            return 128, exc.reason
        self._running = running
        if self._stopping:  # stopped while it was being started
            await running.terminate(self.grace)
        self.container_id = running.id
        self.started, self.ready = True, plan.readiness is None
        self._set(running={"startedAt": started_at})
        log.info("container started", extra={"pod": self.pod, "container": self.name,
                                             "id": running.id})  # fmt: skip
        checks = [
            asyncio.create_task(self._probe(p, live)) for p, live in
            ((plan.liveness, True), (plan.readiness, False)) if p is not None
        ]  # fmt: skip
        code, reason = await running.wait()
        for task in checks:
            task.cancel()
        await asyncio.gather(*checks, return_exceptions=True)
        self._running = None
        self.ready = False
        self._terminated(code, reason, started_at)
        log.info("container exited", extra={"pod": self.pod, "container": self.name,
                                            "exitCode": code, "reason": reason})  # fmt: skip
        return code, reason

    def _terminated(self, code: int, reason: str, started_at: str, message: str = "") -> None:
        finished: dict[str, Any] = {"exitCode": code, "reason": reason, "startedAt": started_at,
                                    "finishedAt": now()}  # fmt: skip
        if message:
            finished["message"] = message
        if self.container_id:
            finished["containerID"] = self.container_id
        self.last_state = {"terminated": finished}
        self._set(terminated=finished)

    async def _probe(self, probe: Probe, liveness: bool) -> None:
        await asyncio.sleep(probe.initial_delay)
        passed = failed = 0
        while True:
            running = self._running
            ok = running is not None and await running.probe(probe)
            passed, failed = (passed + 1, 0) if ok else (0, failed + 1)
            if liveness and failed >= probe.failures:
                log.warning("liveness probe failed; restarting",
                            extra={"pod": self.pod, "container": self.name})  # fmt: skip
                await self._terminate(self.grace)
                return
            if not liveness:
                ready = passed >= probe.successes or (self.ready and failed < probe.failures)
                if ready != self.ready:
                    self.ready = ready
                    self.on_change()
            await asyncio.sleep(probe.period)

    @property
    def running(self) -> bool:
        return self._running is not None and "running" in self.state

    async def exec(self, argv: list[str], stdin: bool, tty: bool) -> ExecProcess:
        """`kubectl exec`: the command where this container runs, or ExecError."""
        running = self._running
        if running is None or "running" not in self.state:
            raise ExecError(f"container {self.name} is not running")
        return await running.exec(argv, stdin, tty)

    async def _terminate(self, grace: float) -> None:
        running = self._running
        if running is not None:
            await running.terminate(grace)

    async def stop(self, grace: float, task: asyncio.Task[None]) -> None:
        """Graceful stop: SIGTERM, SIGKILL after `grace` seconds; the run loop ends."""
        self._stopping = True
        self._wake.set()
        self._replanned.set()
        await self._terminate(grace)
        with contextlib.suppress(asyncio.CancelledError):
            await task
