"""What the cloud sends down: objects into MetaManager and the twins, acked; log queries answered.

Each object is checked against what the node holds (a Device against its model, a model against
the devices that use it, a pod on its own) and stored before it is acted on and acked; one that
fails the check is answered with an error and neither stored nor acked. After every connect the
node asks for a resync, listing the versions it holds.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from devicetwin.catalog import Catalog, Change
from devicetwin.model import Device
from devicetwin.service import now_ms
from devicetwin.spec import ManifestError
from edgecore.edged.logs import LogError, read_log
from edgecore.edged.manager import check_pod
from edgecore.hub import EdgeHub
from edgecore.metamanager import MetaStore
from kedge.channel import routes
from kedge.channel.message import Message, Op

log = logging.getLogger("kedge.edgecore")
Adopt = Callable[[list[Device]], Awaitable[None]]


class Pods(Protocol):
    """What the intake needs of edged."""

    async def sync(self, pods: list[dict[str, Any]]) -> None: ...
    def config_changed(self) -> None: ...
    def log_file(self, key: str, container: str, previous: bool) -> Path | None: ...


class Intake:
    def __init__(
        self, node: str, meta: MetaStore, catalog: Catalog, hub: EdgeHub, adopt: Adopt, edged: Pods
    ) -> None:
        """`adopt(devices)`: make them the node's device set (the twins, the broker's ACL)."""
        self.node, self.meta, self.catalog, self.hub = node, meta, catalog, hub
        self.adopt, self.edged = adopt, edged
        self.source = routes.edge_source(node)

    async def resync(self) -> None:
        """After a connect: the versions held, so the cloud sends what is newer or missing."""
        await self.hub.send(routes.resync(self.node, self.meta.versions()))

    async def on_object(self, message: Message) -> None:
        """`resource/update|delete`: check, store, act, ack."""
        kind = routes.kind_of(message.resource)
        change = Change()
        try:
            rv = int(message.resource_version)
            body = message.content if message.operation == Op.UPDATE else None
            if body is not None and not isinstance(body, dict):
                raise ValueError("content must be an object")
            if kind in routes.DEVICE_KINDS:
                change = self.catalog.check(f"cloud {message.resource}", body, now_ms())
            elif kind == "pod" and body is not None:
                check_pod(body, self.node)
            stored = self.meta.apply(message.resource, rv, body)
        except (ValueError, ManifestError) as exc:
            log.warning("refused %s: %s", message.resource, exc, extra={"node": self.node})
            await self.hub.send(message.reply(self.source, Op.RESPONSE, {"error": str(exc)}))
            return
        if stored:
            await self._act(kind, change)
        await self.hub.send(routes.object_ack(self.node, message))

    async def _act(self, kind: str, change: Change) -> None:
        if kind in routes.DEVICE_KINDS:
            self.catalog.apply(change)
            await self.adopt(self.catalog.bound())
        elif kind == "pod":
            await self.edged.sync(self.meta.objects("pod"))
        else:  # a ConfigMap or Secret: the pods that use it look again
            self.edged.config_changed()

    async def log_query(self, message: Message) -> None:
        """`pod/query` on `log/<ns>/<pod>`: a container's log (`kubectl logs`)."""
        query = message.content if isinstance(message.content, dict) else {}
        try:
            _, namespace, pod = routes.parse_key(message.resource, ("log",))
            container = str(query.get("container") or "")
            path = self.edged.log_file(f"{namespace}/{pod}", container, bool(query.get("previous")))
            answer: dict[str, object] = {"log": read_log(path, query)}
        except ValueError as exc:  # LogError too
            code = exc.code if isinstance(exc, LogError) else 400
            answer = {"error": str(exc), "code": code}
        await self.hub.send(message.reply(self.source, Op.RESPONSE, answer))
