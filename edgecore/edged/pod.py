"""One pod on this node: its volumes, its containers, and the status kubelet would report."""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from edgecore.edged.container import Container, now
from edgecore.edged.launch import Launcher, LaunchError, PodRuntime, ProcessRuntime
from edgecore.edged.podspec import (
    ContainerPlan,
    Lookup,
    PodConfigError,
    grace_period,
    plan_container,
    restart_policy,
)
from edgecore.edged.volumes import materialise, mount_table, rewrite, secret_root

log = logging.getLogger("kedge.edged")
Obj = dict[str, Any]


def _condition(kind: str, ok: bool, since: str) -> dict[str, Any]:
    return {"type": kind, "status": "True" if ok else "False", "lastTransitionTime": since,
            "lastProbeTime": None}  # fmt: skip


def phase(states: list[dict[str, Any]], restarting: bool) -> str:
    """Pending until every container ran once; Succeeded/Failed once all ended for good."""
    if not states:  # not started yet
        return "Pending"
    if any("waiting" in s and not c for s, c in ((x["state"], x["ran"]) for x in states)):
        return "Pending"
    ended = [s["state"].get("terminated") for s in states]
    if all(ended) and not restarting:
        return "Succeeded" if all(e["exitCode"] == 0 for e in ended) else "Failed"
    return "Running"


class PodRunner:
    def __init__(
        self,
        pod: Obj,
        node: str,
        pods_dir: Path,
        lookup: Lookup,
        base_env: Mapping[str, str],
        backoff: float,
        on_change: Callable[[PodRunner], None],
        runtime: PodRuntime | None = None,
    ) -> None:
        meta = pod.get("metadata") or {}
        self.runtime: PodRuntime = runtime or ProcessRuntime()
        self.launcher: Launcher | None = None
        self.pod, self.node, self.lookup, self.base_env = pod, node, lookup, base_env
        self.key = f"{meta.get('namespace', 'default')}/{meta.get('name', '')}"
        self.uid = str(meta.get("uid", ""))
        self.dir = pods_dir / (self.uid or self.key.replace("/", "_"))
        self.secrets = secret_root(pods_dir) / self.dir.name
        self.on_change = on_change
        self.policy = restart_policy(pod)
        self.started_at = now()
        self._since: dict[str, tuple[bool, str]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.containers: list[Container] = []
        self._backoff = backoff

    def _plans(self) -> list[ContainerPlan]:
        env = {**self.base_env, "HOSTNAME": str((self.pod.get("metadata") or {}).get("name", ""))}
        containers = (self.pod.get("spec") or {}).get("containers") or []
        images = isinstance(self.runtime, ProcessRuntime)  # its image table, or real images
        ip = self.address()
        plans = [plan_container(c, self.pod, self.node, self.lookup, env, images, ip)
                 for c in containers]  # fmt: skip
        try:
            volumes = materialise(self.pod, self.dir, self.lookup, self.secrets)
        except (PodConfigError, OSError) as exc:
            return [ContainerPlan(p.name, p.image, error=("CreateContainerConfigError", str(exc)))
                    if p.error is None else p for p in plans]  # fmt: skip
        out = []
        for plan in plans:
            if plan.error is not None:
                out.append(plan)
                continue
            try:
                table = mount_table(plan.mounts, volumes)
            except PodConfigError as exc:
                error = ("CreateContainerConfigError", str(exc))
                out.append(ContainerPlan(plan.name, plan.image, error=error))
                continue
            if not images:  # real mounts: paths stay as the pod wrote them
                out.append(replace(plan, binds=tuple(table)))
                continue
            out.append(replace(
                plan, argv=tuple(rewrite(a, table) for a in plan.argv),
                env={k: rewrite(v, table) for k, v in plan.env.items()},
                working_dir=rewrite(plan.working_dir, table),
            ))  # fmt: skip
        return out

    async def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        grace = grace_period(self.pod)
        failed: tuple[str, str] | None = None
        try:
            self.launcher = await self.runtime.open(self.pod, self.dir)
        except LaunchError as exc:  # no sandbox: every container waits with the reason
            log.warning("pod not started: %s", exc.message,
                        extra={"node": self.node, "pod": self.key})  # fmt: skip
            failed = (exc.reason, exc.message)
        for plan in self._plans():
            if failed is not None:
                plan = replace(plan, error=failed)
            container = Container(self.key, plan, self.policy, self.dir, self._backoff,
                                  lambda: self.on_change(self), self.launcher)  # fmt: skip
            container.grace = grace
            self.containers.append(container)
            self._tasks.append(asyncio.create_task(container.run(), name=f"{self.key}/{plan.name}"))
        log.info("pod started", extra={"node": self.node, "pod": self.key, "uid": self.uid})

    def config_changed(self) -> None:
        """ConfigMaps/Secrets changed: refresh volumes, and plan again what could not start."""
        plans = {p.name: p for p in self._plans()}
        for container in self.containers:
            plan = plans.get(container.name)
            if plan is not None and container.plan.error is not None:
                container.replan(plan)

    async def stop(self, grace: float | None = None) -> None:
        wait = grace_period(self.pod) if grace is None else grace
        await asyncio.gather(*(c.stop(wait, t) for c, t in zip(self.containers, self._tasks,
                                                               strict=True)))  # fmt: skip
        if self.launcher is not None:
            await self.runtime.close(self.launcher)
        log.info("pod stopped", extra={"node": self.node, "pod": self.key, "uid": self.uid})

    def remove_files(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def remove_secrets(self) -> None:
        """A stopped pod's Secret volumes go at once (they are made again if it starts)."""
        shutil.rmtree(self.secrets, ignore_errors=True)

    def _transition(self, kind: str, ok: bool) -> str:
        old = self._since.get(kind)
        if old is None or old[0] != ok:
            self._since[kind] = (ok, now())
        return self._since[kind][1]

    def address(self) -> str:
        """The pod's own address: the node's for host processes, its sandbox's under CRI."""
        return self.runtime.pod_ip(self.launcher) if self.launcher is not None else "127.0.0.1"

    def status(self) -> dict[str, Any]:
        statuses = [c.status() for c in self.containers]
        restarting = any(c.restarts_after(int((c.state.get("terminated") or {}).get("exitCode", 0)))
                         for c in self.containers)  # fmt: skip
        pod_phase = phase([{"state": c.state, "ran": c.started} for c in self.containers],
                          restarting)  # fmt: skip
        ready = bool(statuses) and all(s["ready"] for s in statuses)
        ip = self.address()
        scheduled = self._transition("PodScheduled", True)
        return {
            "phase": pod_phase,
            "conditions": [
                _condition("PodScheduled", True, scheduled),
                _condition("Initialized", True, self._transition("Initialized", True)),
                _condition("ContainersReady", ready, self._transition("ContainersReady", ready)),
                _condition("Ready", ready, self._transition("Ready", ready)),
            ],
            "hostIP": "127.0.0.1",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": self.started_at,
            "containerStatuses": statuses,
            "qosClass": "BestEffort",
        }
