"""Every cloudcore replica's view of the edge Nodes, from the API server (an informer).

A node's heartbeats reach only the replica it is connected to, but device conditions, the node
monitor and the other replicas need its facts: Ready as stored (the monitor may have marked it
Unknown), its taints, and which mappers run on it, which the serving replica keeps in two
annotations. Reading them from the Nodes makes every replica see the same thing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import orjson
from kubernetes import client

from controllers.informer import Informer
from controllers.lister import raw_lister

log = logging.getLogger("kedge.controllers")
Obj = dict[str, Any]
EDGE_ROLE = "node-role.kubernetes.io/edge"
MAPPERS_ANNOTATION = "kedge.io/mappers"  # protocols with a mapper registered, comma separated
LOST_ANNOTATION = "kedge.io/mappers-lost"  # JSON: protocol -> since when its mapper is gone
NodeFacts = tuple[str | None, frozenset[str], frozenset[tuple[str, str]]]


def ready_of(node: Obj) -> Obj | None:
    conditions = (node.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if isinstance(c, dict) and c.get("type") == "Ready"), None)


def mapper_annotations(mappers: frozenset[str], lost: frozenset[tuple[str, str]]
                       ) -> dict[str, str]:  # fmt: skip
    return {MAPPERS_ANNOTATION: ",".join(sorted(mappers)),
            LOST_ANNOTATION: orjson.dumps(dict(sorted(lost))).decode()}  # fmt: skip


def facts_of(node: Obj) -> NodeFacts:
    annotations = (node.get("metadata") or {}).get("annotations") or {}
    mappers = frozenset(m for m in str(annotations.get(MAPPERS_ANNOTATION, "")).split(",") if m)
    try:
        lost_map = orjson.loads(annotations.get(LOST_ANNOTATION) or "{}")
    except orjson.JSONDecodeError:
        lost_map = {}
    lost = frozenset(
        (str(k), str(v)) for k, v in (lost_map if isinstance(lost_map, dict) else {}).items()
    )
    ready = ready_of(node)
    return (str(ready.get("status")) if ready else None), mappers, lost


class NodeView:
    def __init__(self, api: client.ApiClient) -> None:
        self.core = client.CoreV1Api(api)
        self.nodes: dict[str, Obj] = {}
        self.synced = asyncio.Event()  # listed once
        self.listeners: list[Callable[[str], None]] = []  # called with a changed node's name
        self._informer: Informer | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        lister = raw_lister(self.core.list_node, label_selector=EDGE_ROLE)
        self._informer = Informer("nodes", lister, loop, self._event)
        self._informer.start()

    def stop(self) -> None:
        if self._informer is not None:
            self._informer.stop()

    def _event(self, kind: str, node: Obj) -> None:
        if kind == "SYNCED":
            self.synced.set()
            return
        name = str((node.get("metadata") or {}).get("name", ""))
        if kind == "DELETED":
            self.nodes.pop(name, None)
        else:
            self.nodes[name] = node
        for listener in self.listeners:
            listener(name)

    def facts(self, node: str) -> NodeFacts:
        """(Ready: `True`, `Unknown`, ... or None for a node not registered; its mappers; the
        protocols whose mapper stopped, with when)."""
        found = self.nodes.get(node)
        return facts_of(found) if found is not None else (None, frozenset(), frozenset())
