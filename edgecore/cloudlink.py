"""The edge end of cloud sync: objects from the cloud into MetaManager and the twins, acked.

Each object is checked (the node's full set must still parse) and stored before it is acted on
and acked; one that does not parse is answered with an error and not stored. After every
connect the edge asks for a resync, listing the versions it holds.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from devicetwin.model import Device
from devicetwin.service import now_ms
from devicetwin.spec import Document, ManifestError, load_documents
from edgecore.hub import EdgeHub
from edgecore.metamanager import MetaStore
from kedge.channel.message import Message

log = logging.getLogger("kedge.edgecore")
GROUP = "resource"
Adopt = Callable[[list[Device]], Awaitable[None]]


class CloudLink:
    def __init__(self, node: str, meta: MetaStore, manifests: list[Document], adopt: Adopt) -> None:
        self.node, self.meta, self.manifests, self.adopt = node, meta, manifests, adopt
        self.hub: EdgeHub | None = None
        self.source = f"edge/{node}"

    def declared(self) -> list[Device]:
        return load_documents([*self.manifests, *self.meta.documents()], self.node, now_ms())

    async def on_connect(self) -> None:
        assert self.hub is not None
        await self.hub.send(
            Message(self.source, GROUP, "", "resync", {"versions": self.meta.versions()})
        )

    async def on_message(self, message: Message) -> None:
        assert self.hub is not None
        if message.group != GROUP or message.operation not in ("update", "delete"):
            log.info("unhandled %s/%s from the cloud", message.group, message.operation,
                     extra={"node": self.node})  # fmt: skip
            return
        try:
            rv = int(message.resource_version)
            body = message.content if message.operation == "update" else None
            if body is not None and not isinstance(body, dict):
                raise ValueError("content must be an object")
            if body is not None:  # the node's set must still parse with it
                source = f"cloud {message.resource}"
                others = [d for d in self.meta.documents() if d.source != source]
                documents = [*self.manifests, *others, Document(source, 1, body)]
                load_documents(documents, self.node, now_ms())
            changed = self.meta.apply(message.resource, rv, body)
        except (ValueError, ManifestError) as exc:
            log.warning("refused %s: %s", message.resource, exc, extra={"node": self.node})
            await self.hub.send(message.reply(self.source, "response", {"error": str(exc)}))
            return
        if changed:
            await self.adopt(self.declared())
        ack = Message(
            self.source, GROUP, message.resource, "ack", None,
            parent_id=message.msg_id, resource_version=message.resource_version,
        )  # fmt: skip
        await self.hub.send(ack)
