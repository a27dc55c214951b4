"""The standalone control plane: scheduler, DaemonSet and Deployment controllers.

Only for the embedded API server (`kedge cloudcore --workload-controllers`; `kedge up` turns it
on): a real cluster's own scheduler and controllers do this, and kedge only delivers. One
informer cache (pods, nodes, daemonsets, deployments) feeds one level-based pass after every
burst of changes: DaemonSets and Deployments create and delete pods (see `replicas`), then
pods without a node are bound to the best fitting one (see `placement`) or marked
`PodScheduled=False` with kube-scheduler's kind of message. Writes run in worker threads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from controllers.apicall import write
from controllers.informer import Informers
from controllers.lister import raw_lister
from controllers.placement import choose
from controllers.replicas import Plan, daemonset_plan, deployment_plan

log = logging.getLogger("kedge.controllers")
Obj = dict[str, Any]
Key = tuple[str, str]
SCHEDULER = "default-scheduler"


def _key(obj: Obj) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


class Workloads:
    def __init__(self, api: client.ApiClient) -> None:
        self.core, self.apps = client.CoreV1Api(api), client.AppsV1Api(api)
        self.cache: dict[str, dict[Key, Obj]] = {
            "pods": {}, "nodes": {}, "daemonsets": {}, "deployments": {}
        }  # fmt: skip
        self._listed: set[str] = set()
        self._wake = asyncio.Event()
        self._informers = Informers()
        self._written: dict[tuple[str, Key], Obj] = {}  # statuses last written

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        listers: dict[str, Callable[..., Any]] = {
            "pods": raw_lister(self.core.list_pod_for_all_namespaces),
            "nodes": raw_lister(self.core.list_node),
            "daemonsets": raw_lister(self.apps.list_daemon_set_for_all_namespaces),
            "deployments": raw_lister(self.apps.list_deployment_for_all_namespaces),
        }
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

    async def reconcile(self) -> None:
        pods = list(self.cache["pods"].values())
        nodes = sorted(self.cache["nodes"].values(), key=lambda n: n["metadata"]["name"])
        for ds in list(self.cache["daemonsets"].values()):
            namespace = str(ds["metadata"].get("namespace", "default"))
            spaced = [p for p in pods if _key(p)[0] == namespace]
            await self._apply("daemonsets", ds, daemonset_plan(ds, nodes, spaced))
        for deployment in list(self.cache["deployments"].values()):
            namespace = str(deployment["metadata"].get("namespace", "default"))
            spaced = [p for p in pods if _key(p)[0] == namespace]
            await self._apply("deployments", deployment, deployment_plan(deployment, spaced))
        await self._schedule(pods, nodes)

    async def _apply(self, resource: str, owner: Obj, plan: Plan) -> None:
        namespace, name = _key(owner)
        for pod in plan.create:
            await self._call(self.core.create_namespaced_pod, namespace, pod)
        for pod_name in plan.delete:
            await self._call(self.core.delete_namespaced_pod, pod_name, namespace)
        if plan.create or plan.delete:
            log.info("%s %s/%s: %d pods created, %d deleted", resource[:-1], namespace, name,
                     len(plan.create), len(plan.delete))  # fmt: skip
        if plan.status != self._written.get((resource, (namespace, name))) and plan.status != {
            k: v for k, v in (owner.get("status") or {}).items() if k in plan.status
        }:
            patch = (self.apps.patch_namespaced_daemon_set_status if resource == "daemonsets"
                     else self.apps.patch_namespaced_deployment_status)  # fmt: skip
            if await self._call(patch, name, namespace, {"status": plan.status}):
                self._written[(resource, (namespace, name))] = plan.status

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
