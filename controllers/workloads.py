"""The standalone control plane: scheduler, Deployment, ReplicaSet and DaemonSet controllers.

Only for the embedded API server (`kedge cloudcore --workload-controllers`; `kedge up` turns it
on): a real cluster's own scheduler and controllers do this, and kedge only delivers. One
informer cache feeds one level-based pass after every burst of changes (and when time alone
changes something: minReadySeconds, progress deadlines): Deployments drive ReplicaSets (see
`rollout`), ReplicaSets and DaemonSets create and delete pods (`replicas`, `daemonsets`), then
pods without a node are bound to the best fitting one (see `placement`) or marked
`PodScheduled=False` with kube-scheduler's kind of message. Writes run in worker threads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from controllers.apicall import write
from controllers.daemonsets import daemonset_plan, history_plan
from controllers.informer import Informers
from controllers.lister import raw_lister
from controllers.placement import choose
from controllers.progress import Moment
from controllers.replicas import Plan, active, owned_by, replicaset_plan
from controllers.rollout import REVISION, Rollout, deployment_rollout
from kedge import clock

log = logging.getLogger("kedge.controllers")
Obj = dict[str, Any]
Key = tuple[str, str]
SCHEDULER = "default-scheduler"
RESOURCES = ("pods", "nodes", "daemonsets", "deployments", "replicasets", "controllerrevisions")


def _key(obj: Obj) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


class Workloads:
    def __init__(self, api: client.ApiClient) -> None:
        self.core, self.apps = client.CoreV1Api(api), client.AppsV1Api(api)
        self.cache: dict[str, dict[Key, Obj]] = {name: {} for name in RESOURCES}
        self._listed: set[str] = set()
        self._wake = asyncio.Event()
        self._informers = Informers()
        self._written: dict[tuple[str, Key], Obj] = {}  # statuses last written
        self._timer: asyncio.TimerHandle | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        listers: dict[str, Callable[..., Any]] = {
            "pods": raw_lister(self.core.list_pod_for_all_namespaces),
            "nodes": raw_lister(self.core.list_node),
            "daemonsets": raw_lister(self.apps.list_daemon_set_for_all_namespaces),
            "deployments": raw_lister(self.apps.list_deployment_for_all_namespaces),
            "replicasets": raw_lister(self.apps.list_replica_set_for_all_namespaces),
            "controllerrevisions": raw_lister(
                self.apps.list_controller_revision_for_all_namespaces),
        }  # fmt: skip
        self._informers.start(listers, loop, self._event)

    def stop(self) -> None:
        self._informers.stop()

    def _event(self, resource: str, kind: str, obj: Obj) -> None:
        if kind == "SYNCED":
            self._listed.add(resource)
        elif kind == "DELETED":
            self.cache[resource].pop(_key(obj), None)
        else:
            self.cache[resource][_key(obj)] = obj
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._listed != set(self.cache):
                continue
            try:
                await self.reconcile()
            except Exception:  # noqa: BLE001 - one bad pass must not stop the control plane
                log.exception("workload pass failed; retrying on the next change")

    def _in(self, resource: str, namespace: str) -> list[Obj]:
        return [o for k, o in self.cache[resource].items() if k[0] == namespace]

    async def reconcile(self) -> None:
        at = Moment(time.time(), clock.now())
        rechecks: list[float] = []
        pods = list(self.cache["pods"].values())
        nodes = sorted(self.cache["nodes"].values(), key=lambda n: n["metadata"]["name"])
        for deployment in list(self.cache["deployments"].values()):
            namespace = _key(deployment)[0]
            uid, spaced = str(deployment["metadata"]["uid"]), self._in("pods", namespace)
            owned = owned_by(self._in("replicasets", namespace), uid)
            rollout = deployment_rollout(deployment, owned, spaced, at)
            await self._roll(deployment, rollout, owned_by(spaced, uid))
            rechecks.append(rollout.recheck or 0)
        for rs in list(self.cache["replicasets"].values()):
            plan = replicaset_plan(rs, self._in("pods", _key(rs)[0]), at.now)
            await self._apply("replicasets", rs, plan)
            rechecks.append(plan.recheck or 0)
        for ds in list(self.cache["daemonsets"].values()):
            plan = daemonset_plan(ds, nodes, self._in("pods", _key(ds)[0]), at.now)
            await self._apply("daemonsets", ds, plan)
            await self._history(ds)
            rechecks.append(plan.recheck or 0)
        await self._schedule(pods, nodes)
        soonest = min((r for r in rechecks if r > 0), default=None)
        if self._timer is not None:
            self._timer.cancel()
        if soonest is not None:  # time alone will change a plan then: one more pass
            self._timer = asyncio.get_running_loop().call_later(soonest + 0.05, self._wake.set)

    async def _roll(self, deployment: Obj, rollout: Rollout, legacy: list[Obj]) -> None:
        namespace, name = _key(deployment)
        for rs in rollout.create:
            await self._call(self.apps.create_namespaced_replica_set, namespace, rs)
            log.info("deployment %s/%s: replica set %s created", namespace, name,
                     rs["metadata"]["name"])  # fmt: skip
        for rs_name, patch in rollout.patch.items():
            await self._call(self.apps.patch_namespaced_replica_set, rs_name, namespace, patch)
        for rs_name in rollout.delete:
            await self._call(self.apps.delete_namespaced_replica_set, rs_name, namespace)
        if rollout.revision:
            await self._call(
                self.apps.patch_namespaced_deployment,
                name,
                namespace,
                {"metadata": {"annotations": {REVISION: rollout.revision}}},
            )
        status = rollout.status
        if active(legacy) and status["availableReplicas"] >= status["updatedReplicas"] == (
                deployment.get("spec") or {}).get("replicas", 1):  # fmt: skip
            for pod in legacy:  # owned by the Deployment itself (kedge before ReplicaSets)
                await self._call(self.core.delete_namespaced_pod, pod["metadata"]["name"],
                                 namespace)  # fmt: skip
        await self._status("deployments", deployment, status)

    async def _history(self, ds: Obj) -> None:
        namespace, _ = _key(ds)
        history = history_plan(ds, self._in("controllerrevisions", namespace))
        for revision in history.create:
            await self._call(self.apps.create_namespaced_controller_revision, namespace, revision)
        for rev_name, number in history.revise.items():
            await self._call(self.apps.patch_namespaced_controller_revision, rev_name, namespace,
                             {"revision": number})  # fmt: skip
        for rev_name in history.delete:
            await self._call(self.apps.delete_namespaced_controller_revision, rev_name, namespace)

    async def _apply(self, resource: str, owner: Obj, plan: Plan) -> None:
        namespace, name = _key(owner)
        for pod in plan.create:
            await self._call(self.core.create_namespaced_pod, namespace, pod)
        for pod_name in plan.delete:
            await self._call(self.core.delete_namespaced_pod, pod_name, namespace)
        if plan.create or plan.delete:
            log.info("%s %s/%s: %d pods created, %d deleted", resource[:-1], namespace, name,
                     len(plan.create), len(plan.delete))  # fmt: skip
        await self._status(resource, owner, plan.status)

    async def _status(self, resource: str, owner: Obj, status: Obj) -> None:
        namespace, name = _key(owner)
        shown = {k: v for k, v in (owner.get("status") or {}).items() if k in status}
        if status == self._written.get((resource, (namespace, name))) or status == shown:
            return
        patch = {
            "daemonsets": self.apps.patch_namespaced_daemon_set_status,
            "deployments": self.apps.patch_namespaced_deployment_status,
            "replicasets": self.apps.patch_namespaced_replica_set_status,
        }[resource]
        if await self._call(patch, name, namespace, {"status": status}):
            self._written[(resource, (namespace, name))] = status

    async def _schedule(self, pods: list[Obj], nodes: list[Obj]) -> None:
        pods_on: dict[str, list[Obj]] = {}
        for pod in pods:
            node = (pod.get("spec") or {}).get("nodeName")
            if node and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                pods_on.setdefault(str(node), []).append(pod)
        for pod in sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp", "")):
            spec, meta = pod.get("spec") or {}, pod["metadata"]
            if spec.get("nodeName") or meta.get("deletionTimestamp"):
                continue
            if (spec.get("schedulerName") or SCHEDULER) != SCHEDULER:
                continue
            namespace, name = _key(pod)
            node, why = choose(spec, nodes, pods_on)
            if node:
                if await self._call(self.core.patch_namespaced_pod, name, namespace,
                                    {"spec": {"nodeName": node}}):  # fmt: skip
                    log.info("pod %s/%s bound to %s", namespace, name, node,
                             extra={"node": node})  # fmt: skip
                    pods_on.setdefault(node, []).append(pod)
                continue
            condition = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                         "message": why}  # fmt: skip
            shown = [c for c in (pod.get("status") or {}).get("conditions") or []
                     if c.get("type") == "PodScheduled"]  # fmt: skip
            if shown and shown[0].get("message") == why:
                continue
            status = {"phase": "Pending", "conditions": [condition]}
            await self._call(self.core.patch_namespaced_pod_status, name, namespace,
                             {"status": status})  # fmt: skip
            log.info("pod %s/%s unschedulable: %s", namespace, name, why)

    async def _call(self, call: Callable[..., Any], *args: Any) -> bool:
        """One write; AlreadyExists/NotFound are expected races (a repeated pass), not errors."""
        try:
            await asyncio.to_thread(write, call, *args)
            return True
        except ApiException as exc:
            if exc.status not in (404, 409):
                log.warning("%s failed: %s %s", getattr(call, "__name__", "call"), exc.status,
                            exc.reason)  # fmt: skip
            return False
