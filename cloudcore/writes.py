"""cloudcore's writes to the API server that are not a controller's own (device status has
its own module, `devicestatus`): pod status, a pod's deletion finished, events, and whether a
Node exists. Each runs in a worker thread (the official client is synchronous) and says
nothing of the protocol behind it."""

from __future__ import annotations

import logging
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from controllers.apicall import write

log = logging.getLogger("kedge.cloudcore")


class ApiWrites:
    def __init__(self, api: client.ApiClient) -> None:
        self.core, self.custom = client.CoreV1Api(api), client.CustomObjectsApi(api)

    def pod_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        try:
            write(self.core.patch_namespaced_pod_status, name, namespace,
                  [{"op": "add", "path": "/status", "value": status}])  # fmt: skip
        except ApiException as exc:
            if exc.status != 404:  # a pod deleted meanwhile has no status to write
                raise

    def finish_deletion(self, namespace: str, name: str, uid: str) -> None:
        """A pod its node stopped for its deletionTimestamp: gone now (grace 0, this uid)."""
        try:
            write(self.core.delete_namespaced_pod, name, namespace,
                  body={"gracePeriodSeconds": 0, "preconditions": {"uid": uid}})  # fmt: skip
        except ApiException as exc:
            if exc.status not in (404, 409):
                log.warning("pod %s/%s not deleted: %s", namespace, name, exc.reason)

    def event(self, event: dict[str, Any]) -> None:
        write(self.core.create_namespaced_event, event["metadata"]["namespace"], event)

    def node_exists(self, name: str) -> bool:
        try:
            self.core.read_node(name, _preload_content=False).release_conn()
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True
