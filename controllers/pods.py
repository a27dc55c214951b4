"""EdgeController's pod part: pods bound to edge nodes, and the ConfigMaps and Secrets they use,
delivered to those nodes; pod status from the nodes written back.

Level-based: every informer event recomputes what each edge node must hold (its pods, and the
configmaps/secrets named by their env, envFrom and volumes), and hands the differences to
`deliver` (cloudcore's reliable Downstream): objects that changed, and deletions of what a node
no longer needs. Only nodes labelled `node-role.kubernetes.io/edge` are served; on a real
cluster the other nodes' kubelets run their own pods.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from kubernetes import client

from controllers.informer import Informers
from controllers.lister import raw_lister
from controllers.nodeview import EDGE_ROLE

log = logging.getLogger("kedge.controllers")
Obj = dict[str, Any]
Deliver = Callable[[str, str, int, Obj | None], Awaitable[None]]
KINDS = ("pods", "configmaps", "secrets", "nodes")


def _rv(obj: Obj) -> int:
    return int((obj.get("metadata") or {}).get("resourceVersion") or 0)


def _ns_name(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or "default"), str(meta.get("name", ""))


def references(pod: Obj) -> set[str]:
    """`configmap/<ns>/<name>` and `secret/<ns>/<name>` keys a pod uses."""
    namespace = _ns_name(pod)[0]
    spec = pod.get("spec") or {}
    out: set[str] = set()

    def add(kind: str, name: Any) -> None:
        if isinstance(name, str) and name:
            out.add(f"{kind}/{namespace}/{name}")

    for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        if not isinstance(container, dict):
            continue
        for source in container.get("envFrom") or []:
            add("configmap", ((source or {}).get("configMapRef") or {}).get("name"))
            add("secret", ((source or {}).get("secretRef") or {}).get("name"))
        for item in container.get("env") or []:
            origin = (item or {}).get("valueFrom") or {}
            add("configmap", (origin.get("configMapKeyRef") or {}).get("name"))
            add("secret", (origin.get("secretKeyRef") or {}).get("name"))
    for volume in spec.get("volumes") or []:
        add("configmap", ((volume or {}).get("configMap") or {}).get("name"))
        add("secret", ((volume or {}).get("secret") or {}).get("secretName"))
    return out


class PodDelivery:
    def __init__(self, api: client.ApiClient, deliver: Deliver) -> None:
        self.api, self.deliver = api, deliver
        self.pods: dict[tuple[str, str], Obj] = {}
        self.config: dict[str, Obj] = {}  # configmap/secret key -> object
        self.edge_nodes: set[str] = set()
        self.sent: dict[str, dict[str, int]] = {}  # node -> key -> resourceVersion handed over
        self.tombstones: dict[str, dict[str, int]] = {}  # node -> key -> version of its removal
        self.on_synced: Callable[[int], Awaitable[None]] | None = None  # after a full list
        self._listed: set[str] = set()  # resources listed at least once
        self._informers = Informers()
        self._wake = asyncio.Event()
        self._latest = 0  # newest resourceVersion seen: deletions are sent with it
        self._relisted = False

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        core = client.CoreV1Api(self.api)
        listers = {
            "pods": raw_lister(core.list_pod_for_all_namespaces),
            "configmaps": raw_lister(core.list_config_map_for_all_namespaces),
            "secrets": raw_lister(core.list_secret_for_all_namespaces),
            "nodes": raw_lister(core.list_node, label_selector=EDGE_ROLE),
        }
        self._informers.start(listers, loop, self._event)

    def stop(self) -> None:
        self._informers.stop()

    def _event(self, resource: str, kind: str, obj: Obj) -> None:
        self._latest = max(self._latest, _rv(obj))
        self._wake.set()
        if kind == "SYNCED":
            self._listed.add(resource)
            self._relisted = True
            return
        gone = kind == "DELETED"
        if resource == "pods":
            if gone:
                self.pods.pop(_ns_name(obj), None)
            else:
                self.pods[_ns_name(obj)] = obj
        elif resource == "nodes":
            name = str((obj.get("metadata") or {}).get("name", ""))
            (self.edge_nodes.discard if gone else self.edge_nodes.add)(name)
        else:
            key = f"{resource[:-1]}/{'/'.join(_ns_name(obj))}"
            if gone:
                self.config.pop(key, None)
            else:
                self.config[key] = obj

    def expected(self) -> dict[str, dict[str, Obj]]:
        """node -> key -> object it must hold now."""
        out: dict[str, dict[str, Obj]] = {}
        for (namespace, name), pod in self.pods.items():
            node = str((pod.get("spec") or {}).get("nodeName") or "")
            if node not in self.edge_nodes:
                continue
            held = out.setdefault(node, {})
            held[f"pod/{namespace}/{name}"] = pod
            for key in references(pod):
                if key in self.config:
                    held[key] = self.config[key]
        return out

    def node_of(self, namespace: str, name: str) -> str | None:
        """The edge node a pod runs on, if it is bound to one."""
        node = str(
            ((self.pods.get((namespace, name)) or {}).get("spec") or {}).get("nodeName") or ""
        )
        return node if node in self.edge_nodes else None

    def keys(self) -> dict[str, set[str]]:
        return {node: set(held) for node, held in self.expected().items()}

    async def run(self) -> None:
        """Deliver differences after changes (configs before the pods that use them)."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            if len(self._listed) < len(KINDS):
                continue  # not everything listed yet: partial views would delete things
            expected = self.expected()
            for node in sorted(set(expected) | set(self.sent)):
                wanted, sent = expected.get(node, {}), self.sent.setdefault(node, {})
                tombs = self.tombstones.setdefault(node, {})
                for key in sorted(wanted, key=lambda k: k.startswith("pod/")):
                    version = _rv(wanted[key])
                    if sent.get(key) != version:
                        # taken back earlier and needed again (a ConfigMap whose pod came back):
                        # the node's tombstone is newer than the object, so send it as newer
                        newer = self._latest if version <= tombs.get(key, 0) else version
                        await self.deliver(node, key, newer, wanted[key])
                        sent[key] = version
                for key in sorted(set(sent) - set(wanted), key=lambda k: not k.startswith("pod/")):
                    await self.deliver(node, key, self._latest, None)  # newer than it was
                    tombs[key] = self._latest
                    del sent[key]
            if self._relisted and self.on_synced is not None:
                self._relisted = False
                await self.on_synced(self._latest)


def _summary(status: dict[str, Any] | None) -> tuple[Any, ...]:
    containers = (status or {}).get("containerStatuses") or []
    return (
        (status or {}).get("phase"),
        tuple((c.get("name"), c.get("ready"), c.get("restartCount"), tuple(c.get("state") or {}))
              for c in containers if isinstance(c, dict)),
    )  # fmt: skip


def pod_status_urgent(written: dict[str, Any] | None, status: dict[str, Any]) -> bool:
    """Phase, readiness, restarts or container state changed: what `kubectl get pods` shows,
    written at once (probe-time noise waits for the interval)."""
    return _summary(written) != _summary(status)
