"""Stream sessions to edge pods (`kubectl logs -f`, `kubectl exec`): opened on the pod's node
over its channel session, frames both ways, ended by either side. A node's frames count only for
the sessions opened on that node; a node that goes away ends its sessions."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from cloudcore.hub import CloudHub
from kedge.channel import routes
from kedge.channel.message import Message

log = logging.getLogger("kedge.cloudstream")
BACKLOG = 256  # frames waiting for a slow client before its session is ended
STALL = 10.0  # seconds a full backlog may last
CHUNK = 64 * 1024  # input bytes per channel frame


@dataclass
class Session:
    id: str
    node: str
    frames: asyncio.Queue[tuple[int, bytes] | None] = field(
        default_factory=lambda: asyncio.Queue(BACKLOG)
    )
    ended: dict[str, Any] | None = None  # the edge's final Status

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        """(channel, data) from the edge until the session ends."""
        while (frame := await self.frames.get()) is not None:
            yield frame


class Sessions:
    def __init__(self, hub: CloudHub) -> None:
        self.hub = hub
        self._open: dict[str, Session] = {}
        hub.on_gone.append(self.gone)

    async def open(self, node: str, kind: str, namespace: str, pod: str,
                   params: dict[str, Any]) -> Session | None:  # fmt: skip
        """A session on `node`, or None when the node is not connected here."""
        session = Session(str(uuid.uuid4()), node)
        self._open[session.id] = session
        if not await self.hub.send(node, routes.stream_open(session.id, kind, namespace, pod,
                                                            params)):  # fmt: skip
            self._open.pop(session.id, None)
            return None
        return session

    async def send(self, session: Session, channel: int, data: bytes) -> None:
        """Input for the session, in frames a channel message holds with room to spare."""
        for start in range(0, max(len(data), 1), CHUNK):
            await self.hub.send(session.node, routes.stream_data(
                routes.CLOUD, session.id, channel, data[start : start + CHUNK]))  # fmt: skip

    async def close(self, session: Session) -> None:
        """The client left: the edge stops the session's command."""
        if self._open.get(session.id) is session:
            self._end(session, {"status": "Failure", "message": "the client left"})
            await self.hub.send(session.node, routes.stream_close(routes.CLOUD, session.id))

    def _of(self, message: Message, node: str) -> Session | None:
        session = self._open.get(message.resource.removeprefix("stream/"))
        if session is not None and session.node != node:
            log.warning("stream frame for another node's session refused", extra={"node": node})
            return None
        return session

    async def on_data(self, message: Message, node: str) -> None:
        session = self._of(message, node)
        if session is None:
            return
        try:
            _, channel, data = routes.stream_frame(message)
        except ValueError as exc:
            log.warning("bad stream frame: %s", exc, extra={"node": node})
            return
        try:
            await asyncio.wait_for(session.frames.put((channel, data)), STALL)
        except TimeoutError:
            log.warning("stream client too slow: session ended", extra={"node": node})
            self._end(session, {"status": "Failure", "message": "the client did not keep up"})
            await self.hub.send(node, routes.stream_close(routes.CLOUD, session.id))

    async def on_close(self, message: Message, node: str) -> None:
        session = self._of(message, node)
        if session is not None:
            content = message.content if isinstance(message.content, dict) else {}
            self._end(session, content)

    def gone(self, node: str) -> None:
        for session in [s for s in self._open.values() if s.node == node]:
            self._end(session, {"status": "Failure", "message": f"node {node} disconnected"})

    def _end(self, session: Session, status: dict[str, Any]) -> None:
        self._open.pop(session.id, None)
        session.ended = status
        while session.frames.full():  # the end must fit: the oldest unread frame gives way
            session.frames.get_nowait()
        session.frames.put_nowait(None)
