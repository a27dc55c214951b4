"""Edged: the pods bound to this node, run from the local store and reported upstream.

`sync` is level-based: given every pod the store holds, it starts the new ones, stops the gone
ones (and pods with a deletionTimestamp, reported as gone once stopped, so the cloud can remove
them), and restarts a pod whose uid changed (deleted and created again under the same name).
Status changes are coalesced per pod and handed to `report`, only when they changed.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any

from edgecore.edged.container import Container
from edgecore.edged.launch import PodRuntime, ProcessRuntime
from edgecore.edged.pod import PodRunner
from edgecore.edged.podspec import Lookup
from edgecore.edged.volumes import secret_root

log = logging.getLogger("kedge.edged")
Obj = dict[str, Any]
Report = Callable[[str, dict[str, Any]], Awaitable[None]]  # (ns/name, {uid, status, gone})


class PodError(ValueError):
    """A pod object the node cannot take."""


def check_pod(body: Any, node: str) -> None:
    """What every pod must have before it is stored (the rest is checked when it runs)."""
    if not isinstance(body, dict):
        raise PodError("a pod must be an object")
    meta, spec = body.get("metadata"), body.get("spec")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        raise PodError("a pod needs metadata.name")
    if not isinstance(spec, dict) or not isinstance(spec.get("containers"), list):
        raise PodError("a pod needs spec.containers")
    if not spec["containers"] or not all(isinstance(c, dict) and c.get("name")
                                         for c in spec["containers"]):  # fmt: skip
        raise PodError("every container needs a name")
    if spec.get("nodeName") not in (None, node):
        raise PodError(f"pod is bound to {spec.get('nodeName')!r}, not to this node")


def _deleting(pod: Obj) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


class Edged:
    def __init__(
        self,
        node: str,
        pods_dir: Path,
        lookup: Lookup,
        base_env: Mapping[str, str],
        report: Report | None = None,
        backoff: float = 10.0,
        pod_env: Callable[[Obj], Mapping[str, str]] | None = None,
        runtime: PodRuntime | None = None,
    ) -> None:
        """`pod_env(pod)`: what a pod's containers get beside `base_env` (its broker identity);
        `runtime`: host processes (the default) or CRI."""
        self.runtime: PodRuntime = runtime or ProcessRuntime()
        self.node, self.pods_dir, self.lookup, self.base_env = node, pods_dir, lookup, base_env
        self.report, self.backoff = report, backoff
        self.pod_env = pod_env or (lambda _pod: {})
        shutil.rmtree(secret_root(pods_dir), ignore_errors=True)  # what a killed run left
        self.pods: dict[str, PodRunner] = {}
        self.gone: set[str] = set()  # pods stopped for their deletionTimestamp
        self._sent: dict[str, Any] = {}
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping: dict[str, asyncio.Task[None]] = {}

    def _changed(self, runner: PodRunner) -> None:
        if self.pods.get(runner.key) is runner:
            self._mark(runner.key)

    def _mark(self, key: str) -> None:
        """The pod's status is to be reported (coalesced by `run`)."""
        self._dirty.add(key)
        self._wake.set()

    async def sync(self, pods: list[Obj]) -> None:
        """Make the running pods match `pods` (everything bound to this node)."""
        async with self._lock:
            wanted = {}
            for pod in pods:
                meta = pod.get("metadata") or {}
                wanted[f"{meta.get('namespace', 'default')}/{meta.get('name', '')}"] = pod
            for key, runner in list(self.pods.items()):
                held = wanted.get(key)
                uid = str((held or {}).get("metadata", {}).get("uid", ""))
                if held is None or uid != runner.uid:
                    self._remove(key)
                elif _deleting(held) and key not in self.gone:
                    meta = held["metadata"]
                    grace = meta.get("deletionGracePeriodSeconds")
                    await runner.stop(float(grace) if isinstance(grace, (int, float)) else None)
                    self.gone.add(key)
                    self._mark(key)
            for key, pod in wanted.items():
                if key not in self.pods and not _deleting(pod):
                    env = {**self.base_env, **self.pod_env(pod)}
                    runner = PodRunner(pod, self.node, self.pods_dir, self.lookup, env,
                                       self.backoff, self._changed, self.runtime)  # fmt: skip
                    self.pods[key] = runner
                    self._later(self._start(runner, self._stopping.get(key)))
                    self._mark(key)

    def _later(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _start(self, runner: PodRunner, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:  # same name, new uid: the old one must be gone first
            await previous
        if self.pods.get(runner.key) is runner:
            await runner.start()

    def _remove(self, key: str, keep_files: bool = False) -> None:
        """Stop a pod in the background (its grace period must not hold up other pods); its
        files go with it unless edgecore is only shutting down (logs outlive a restart)."""
        runner = self.pods.pop(key)
        self.gone.discard(key)
        self._sent.pop(key, None)

        async def stop() -> None:
            await runner.stop()
            runner.remove_secrets()
            if not keep_files:
                runner.remove_files()
            if self._stopping.get(key) is task:
                del self._stopping[key]

        task = self._later(stop())
        self._stopping[key] = task

    def config_changed(self) -> None:
        for runner in self.pods.values():
            if runner.key not in self.gone:
                runner.config_changed()

    def snapshot(self, key: str) -> dict[str, Any] | None:
        runner = self.pods.get(key)
        if runner is None:
            return None
        return {"uid": runner.uid, "status": runner.status(), "gone": key in self.gone}

    async def run(self, pods: list[Obj]) -> None:
        """Start the stored pods, then send changed pod statuses upstream: until cancelled."""
        await self.sync(pods)
        await asyncio.gather(*list(self._tasks), return_exceptions=True)  # the pods' starts
        await self.runtime.sweep()
        while True:
            await self._wake.wait()
            self._wake.clear()
            dirty, self._dirty = self._dirty, set()
            for key in sorted(dirty):
                snap = self.snapshot(key)
                if snap is not None and snap != self._sent.get(key) and self.report is not None:
                    self._sent[key] = snap
                    await self.report(key, snap)

    async def resend(self) -> None:
        """After a reconnect: every pod's status again."""
        self._sent.clear()
        self._dirty.update(self.pods)
        self._wake.set()

    def container(self, key: str, name: str) -> Container | None:
        """A pod's container by name (the first one for "")."""
        runner = self.pods.get(key)
        for candidate in runner.containers if runner is not None else []:
            if candidate.name == name or not name:
                return candidate
        return None

    def address(self, key: str) -> str | None:
        """The pod's own address (`kubectl port-forward` connects there), None if unknown."""
        runner = self.pods.get(key)
        return runner.address() if runner is not None else None

    def log_file(self, key: str, container: str, previous: bool) -> Path | None:
        found = self.container(key, container)
        return found.log_path(previous) if found is not None else None

    async def close(self) -> None:
        """Stop every pod (gracefully): a stopped edgecore leaves no process behind."""
        async with self._lock:
            for key in list(self.pods):
                self._remove(key, keep_files=True)
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.runtime.shutdown()
