"""cloudcore's writes to the API server that are not a controller's own (device status has
its own module, `devicestatus`): pod status, a pod's deletion finished, events (on the lean
path), and whether a Node exists (the official client, in a worker thread: rare)."""

from __future__ import annotations

import logging
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from controllers.leanapi import JSON_PATCH, LeanApi, path_of

log = logging.getLogger("kedge.cloudcore")


class ApiWrites:
    def __init__(self, api: client.ApiClient, lean: LeanApi) -> None:
        self.core, self.lean = client.CoreV1Api(api), lean

    @staticmethod
    def _pod(namespace: str, *rest: str) -> str:
        return path_of("api", "v1", "namespaces", namespace, "pods", *rest)

    async def pod_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        try:
            await self.lean.patch(self._pod(namespace, name, "status"),
                                  [{"op": "add", "path": "/status", "value": status}],
                                  JSON_PATCH)  # fmt: skip
        except ApiException as exc:
            if exc.status != 404:  # a pod deleted meanwhile has no status to write
                raise

    async def finish_deletion(self, namespace: str, name: str, uid: str) -> None:
        """A pod its node stopped for its deletionTimestamp: gone now (grace 0, this uid)."""
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                "preconditions": {"uid": uid}}  # fmt: skip
        try:
            await self.lean.delete(self._pod(namespace, name), body)
        except ApiException as exc:
            if exc.status not in (404, 409):
                log.warning("pod %s/%s not deleted: %s", namespace, name, exc.reason)

    async def event(self, event: dict[str, Any]) -> None:
        namespace = event["metadata"]["namespace"]
        await self.lean.create(path_of("api", "v1", "namespaces", namespace, "events"), event)

    def node_exists(self, name: str) -> bool:
        try:
            self.core.read_node(name, _preload_content=False).release_conn()
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True
