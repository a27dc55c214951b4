"""A call's stream, and what a connection needs of its server."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from kedge.grpcwire.connection import Connection


class Stream:
    """One call: its request as it arrives, its answer as it leaves."""

    __slots__ = ("id", "headers", "body", "received", "window", "ended", "pending", "task")

    def __init__(self, stream_id: int, headers: dict[bytes, bytes], window: int) -> None:
        self.id, self.headers, self.window = stream_id, headers, window
        self.body = bytearray()
        self.received = 0  # request bytes, padding included (our window for it never grows)
        self.ended = False  # the client sent END_STREAM
        self.pending: memoryview | None = None  # answer bytes waiting for window
        self.task: asyncio.Future[Any] | None = None


class Host(Protocol):
    """What a connection needs of its server."""

    max_body: int  # a request's bytes (5-byte prefix and message) at most
    preface_timeout: float  # seconds a new connection has to send the HTTP/2 preface

    def opened(self, connection: Connection) -> bool: ...  # False: refused
    def closed(self, connection: Connection) -> None: ...
    def dispatch(self, stream: Stream, connection: Connection) -> None: ...
