"""EdgeHub: the edge's connection to CloudHub, kept up with capped backoff.

Mutual TLS with the node's certificate (`context`: set once the node has joined, replaced when
the certificate rotates). Messages arrive at `run`'s handler; `send` returns False while the
cloud is unreachable, so callers keep what they could not send.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from kedge.backoff import Backoff
from kedge.channel.message import FrameError, Message, decode
from kedge.channel.transport import send

log = logging.getLogger("kedge.edgehub")
KEEPALIVE = 15.0
MAX_BACKOFF = 30.0
Handler = Callable[[Message], Awaitable[None]]


def client_context(ca: Path, certificate: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(str(certificate), str(key))
    return context


class EdgeHub:
    def __init__(self, url: str, node: str, context: ssl.SSLContext | None = None) -> None:
        self.url, self.node, self.context = url, node, context
        self.connected = asyncio.Event()
        self._connection: ClientConnection | None = None
        self.connects = 0

    async def send(self, message: Message) -> bool:
        return await send(self._connection, message)

    async def run(self, handler: Handler, on_connect: Callable[[], Awaitable[None]]) -> None:
        """Connect, `on_connect()`, hand every message to `handler`, reconnect: until
        cancelled."""
        assert self.context is not None, "the node certificate comes first"
        backoff = Backoff(0.5, MAX_BACKOFF)
        while True:
            try:
                async with connect(
                    self.url, ssl=self.context, ping_interval=KEEPALIVE, ping_timeout=KEEPALIVE,
                    max_size=4 * 1024 * 1024, open_timeout=10,
                ) as connection:  # fmt: skip
                    self._connection = connection
                    self.connects += 1
                    self.connected.set()
                    backoff.reset()
                    log.info("connected to the cloud", extra={"node": self.node})
                    await on_connect()
                    async for frame in connection:
                        try:
                            message = decode(frame)
                        except FrameError as exc:
                            log.warning(
                                "bad frame from the cloud: %s", exc, extra={"node": self.node}
                            )
                            continue
                        await handler(message)
            except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError) as exc:
                log.info(
                    "cloud unreachable: %r; retry in %.1fs",
                    exc,
                    backoff.upcoming,
                    extra={"node": self.node},
                )
            finally:
                self._connection = None
                self.connected.clear()
            await backoff.pause()  # reconnect pacing
