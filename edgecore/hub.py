"""EdgeHub: the edge's connection to CloudHub, kept up with capped backoff.

Mutual TLS with the node's certificate (`context`: set once the node has joined, replaced when
the certificate rotates). Messages arrive at `run`'s handler; `send` returns False while the
cloud is unreachable, so callers keep what they could not send.

Several cloudcore replicas: `urls` lists them (or one load balancer). Each node tries them in
its own order (`preference`), so nodes spread over the replicas, and moves on to the next
whenever a connection fails, ends or is refused (a full replica answers 503 with Retry-After);
it pauses only once every address failed in a row, for its backoff or the longest Retry-After
heard.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

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


def preference(node: str, count: int) -> list[int]:
    """The order in which `node` tries `count` replicas: rendezvous (highest random weight)
    hashing. Nodes start evenly spread, and a stopped replica's nodes spread evenly over the
    others instead of all moving to its neighbour in the list."""
    return sorted(range(count), reverse=True,
                  key=lambda i: hashlib.blake2b(b"%d/%s" % (i, node.encode()),
                                                digest_size=8).digest())  # fmt: skip


def retry_after(exc: BaseException) -> float:
    """The seconds a refusing replica asked to wait (0 when it did not say)."""
    if not isinstance(exc, InvalidStatus):
        return 0.0
    try:
        return min(MAX_BACKOFF, max(0.0, float(exc.response.headers.get("Retry-After", 0))))
    except ValueError:
        return 0.0


def _why(exc: BaseException) -> str:
    if isinstance(exc, InvalidStatus):
        body = bytes(exc.response.body or b"").decode(errors="replace").strip()[:200]
        return f"refused with {exc.response.status_code}: {body}"
    return repr(exc)


class EdgeHub:
    def __init__(self, urls: list[str], node: str, context: ssl.SSLContext | None = None
                 ) -> None:  # fmt: skip
        self.urls, self.node, self.context = urls, node, context
        self.order, self.position = preference(node, len(urls)), 0
        self.connected = asyncio.Event()
        self._connection: ClientConnection | None = None
        self.connects = 0

    async def send(self, message: Message) -> bool:
        return await send(self._connection, message)

    async def run(self, handler: Handler, on_connect: Callable[[], Awaitable[None]]) -> None:
        """Connect, `on_connect()`, hand every message to `handler`, reconnect: until
        cancelled."""
        assert self.context is not None, "the node certificate comes first"
        backoff, failed, hint = Backoff(0.5, MAX_BACKOFF), 0, 0.0
        while True:
            url = self.urls[self.order[self.position]]
            try:
                async with connect(
                    url, ssl=self.context, ping_interval=KEEPALIVE, ping_timeout=KEEPALIVE,
                    max_size=4 * 1024 * 1024, open_timeout=10,
                ) as connection:  # fmt: skip
                    self._connection = connection
                    self.connects += 1
                    self.connected.set()
                    backoff.reset()
                    failed, hint = 0, 0.0
                    log.info("connected to the cloud", extra={"node": self.node, "url": url})
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
                hint = max(hint, retry_after(exc))
                log.info("cloud %s unreachable: %s", url, _why(exc), extra={"node": self.node})
            finally:
                self._connection = None
                self.connected.clear()
            self.position, failed = (self.position + 1) % len(self.urls), failed + 1
            if failed >= len(self.urls):  # every address failed in a row: pace the retries
                await asyncio.sleep(max(hint, backoff.next()))  # reconnect pacing
                failed, hint = 0, 0.0
