"""CloudHub: the websocket server edge nodes connect to (wss with mutual TLS).

A node is who its client certificate says (CN `system:node:<name>`); one session per node, a
newer connection replaces an older one. Keepalive: a ping every 15 s, a session silent for 30 s
is dropped. A frame that is not a channel message is answered with an error response and the
session stays up. With `limit` sessions open (KubeEdge's nodeLimit) a new node is refused
before the websocket opens, with 503 and Retry-After, so it tries another replica instead of
this one starving the nodes it serves. `cut` (from `stop`, or straight from the signal handler)
ends every session at once: a goodbye frame (1001, going away) written where the socket takes
it, then the socket closed without waiting for the answer, so 10,000 sessions end in one turn of
the loop however busy it is; the nodes move to another replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from kedge.certs import NODE_PREFIX
from kedge.channel.message import FrameError, Message, Op, decode
from kedge.channel.transport import send

log = logging.getLogger("kedge.cloudhub")
KEEPALIVE = 15.0
STOP_GRACE = 2.0  # seconds the session handlers get to finish once their sockets are cut
RETRY_AFTER = 10  # seconds a refused node is asked to wait before trying this replica again
Handler = Callable[[str, Message], Awaitable[None]]


def server_context(ca: Path, certificate: Path, key: Path) -> ssl.SSLContext:
    """TLS that requires a client certificate signed by the cluster CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(ca))
    context.load_cert_chain(str(certificate), str(key))
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _node_of(connection: ServerConnection) -> str | None:
    ssl_object = connection.transport.get_extra_info("ssl_object")
    peer = ssl_object.getpeercert() if ssl_object is not None else None
    for rdn in (peer or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName" and str(value).startswith(NODE_PREFIX):
                return str(value).removeprefix(NODE_PREFIX)
    return None


class CloudHub:
    def __init__(self, context: ssl.SSLContext, limit: int = 0) -> None:
        """`limit`: sessions at most (0: no limit)."""
        self.context, self.limit = context, limit
        self.sessions: dict[str, ServerConnection] = {}
        self._server: Server | None = None
        self.handler: Handler | None = None
        self.stopping = False  # cut: sessions end without handing anything over
        self.on_come: list[Callable[[str], None]] = []  # called when a node's session begins
        self.on_gone: list[Callable[[str], None]] = []  # called when a node's session ends

    async def start(self, host: str, port: int, handler: Handler) -> None:
        """Accept nodes; `handler(node, message)` gets everything they send."""
        self.handler, self.stopping = handler, False
        self._server = await serve(
            self._session, host, port, ssl=self.context, process_request=self._admit,
            ping_interval=KEEPALIVE, ping_timeout=KEEPALIVE, max_size=4 * 1024 * 1024,
        )  # fmt: skip

    def _admit(self, connection: ServerConnection, _request: Request) -> Response | None:
        """Refuse a new node while the limit is reached (a node reconnecting is let in)."""
        if not self.limit or len(self.sessions) < self.limit:
            return None
        if _node_of(connection) in self.sessions:
            return None
        log.info("node refused: node limit reached", extra={"limit": self.limit})
        response = connection.respond(503, f"node limit ({self.limit}) reached: try another "
                                           "cloudcore, or this one later\n")  # fmt: skip
        response.headers["Retry-After"] = str(RETRY_AFTER)
        return response

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(next(iter(self._server.sockets)).getsockname()[1])

    def cut(self) -> int:
        """Refuse new sessions and end every open one now; how many were ended. Synchronous,
        so that a signal handler can call it before anything else queued on the loop."""
        if self._server is None or self.stopping:
            return 0
        self.stopping = True
        self._server.close(close_connections=False)
        connections = list(self.sessions.values())
        for connection in connections:
            with contextlib.suppress(Exception):  # best effort: the socket may be full or gone
                connection.protocol.send_close(1001, "cloudcore stopping")
                connection.transport.write(b"".join(connection.protocol.data_to_send()))
            connection.transport.abort()
        self.sessions.clear()
        log.info("sessions cut", extra={"sessions": len(connections)})
        return len(connections)

    async def stop(self) -> None:
        if self._server is None:
            return
        self.cut()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), STOP_GRACE)

    def address(self, node: str) -> str | None:
        """The IP address a connected node's session comes from."""
        connection = self.sessions.get(node)
        peer = connection.remote_address if connection is not None else None
        return str(peer[0]) if peer else None

    async def send(self, node: str, message: Message) -> bool:
        """False when the node is not connected (the caller keeps the message to retry)."""
        return await send(self.sessions.get(node), message)

    async def _session(self, connection: ServerConnection) -> None:
        node = _node_of(connection)
        if node is None:
            await connection.close(
                4001, "client certificate is not a node's (CN system:node:<name>)"
            )
            return
        old = self.sessions.get(node)
        self.sessions[node] = connection
        for come in self.on_come:
            come(node)
        if old is not None:
            await old.close(4000, "replaced by a newer connection")
        log.info("node connected", extra={"node": node})
        try:
            async for frame in connection:
                try:
                    message = decode(frame)
                except FrameError as exc:
                    log.warning("bad frame: %s", exc, extra={"node": node})
                    error = Message("cloudhub", "error", "", Op.RESPONSE, {"error": str(exc)})
                    await connection.send(error.encode().decode())
                    continue
                assert self.handler is not None
                await self.handler(node, message)
        except ConnectionClosed:
            pass
        finally:
            if not self.stopping:  # once cut there is nothing to hand over: the process ends
                await self._ended(node, connection)

    async def _ended(self, node: str, connection: ServerConnection) -> None:
        if self.sessions.get(node) is connection:
            del self.sessions[node]
            for gone in self.on_gone:
                gone(node)
        log.info("node disconnected", extra={"node": node})
        with contextlib.suppress(Exception):
            await connection.close()
