"""A gRPC server for unary calls on a Unix socket, without grpcio.

grpcio's Python server costs about 200 us of CPU per call here whatever the handler does (4,700
calls/s for a handler doing nothing); a DMI mapper reports every twin as a call. This server
speaks the same protocol (gRPC over HTTP/2; the interop is tested with grpcio's own client) at a
fraction of that. A handler takes the request message's bytes and returns the response
message's bytes, a Later it settles when it can, or an awaitable of the bytes; raising RpcError
answers with that status. A connection holds one of MAX_CONNECTIONS slots: one that sends no
preface in time, or makes no call for idle_timeout, gets a GOAWAY and is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from kedge.grpcwire.connection import Connection
from kedge.grpcwire.status import RpcError, Status, http_status
from kedge.grpcwire.stream import Stream

log = logging.getLogger("kedge.grpcwire")


class Later:
    """An answer a handler gives after returning, without a future and a loop callback per call
    (a handler answering thousands of calls at once settles each directly)."""

    __slots__ = ("_answer",)

    def __init__(self) -> None:
        self._answer: Callable[[bytes | RpcError], None] | None = None

    def on_settle(self, answer: Callable[[bytes | RpcError], None]) -> None:
        """Who is told the answer (the server, for the call's stream)."""
        self._answer = answer

    def settle(self, result: bytes | RpcError) -> None:
        """Answer with the response message, or with the error's status (once; a call the
        client reset meanwhile is not answered)."""
        answer, self._answer = self._answer, None
        if answer is not None:
            answer(result)


Reply = bytes | Later | Awaitable[bytes]
Handler = Callable[[bytes], Reply]
MAX_CONNECTIONS = 128
PREFACE_TIMEOUT = 10.0  # a connection that sends no HTTP/2 preface by then is closed
IDLE_TIMEOUT = 300.0  # a connection without calls for this long (up to twice) is closed
PREFIX = 5  # a message's compressed flag and 4-byte length


def clear_stale(path: Path) -> None:
    """Remove a socket left at `path` by a killed server (anything else there stays, and
    listening then fails with the reason)."""
    if path.is_socket():
        path.unlink()


class GrpcServer:
    def __init__(self, methods: Mapping[str, Handler], max_message: int = 1 << 20,
                 preface_timeout: float = PREFACE_TIMEOUT,
                 idle_timeout: float = IDLE_TIMEOUT) -> None:  # fmt: skip
        """`methods`: handlers by path, e.g. "/v1beta1.DeviceManagerService/MapperRegister"."""
        self.methods = {path.encode(): handler for path, handler in methods.items()}
        self.max_message, self.max_body = max_message, max_message + PREFIX
        self.preface_timeout, self.idle_timeout = preface_timeout, idle_timeout
        self._sweeper: asyncio.TimerHandle | None = None
        self.connections: set[Connection] = set()
        self._server: asyncio.AbstractServer | None = None
        self._path: Path | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    async def start(self, path: Path) -> None:
        """Listen on `path`, owner-only (0600 from the start: created under umask 177)."""
        loop = asyncio.get_running_loop()
        old_umask = os.umask(0o177)
        try:
            self._server = await loop.create_unix_server(lambda: Connection(self), str(path))
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)
        self._path = path
        self._sweeper = loop.call_later(self.idle_timeout, self._sweep)

    def _sweep(self) -> None:
        """GOAWAY to connections that made no call since the last sweep: each holds one of
        MAX_CONNECTIONS slots, and gRPC clients simply reconnect for their next call."""
        for connection in list(self.connections):
            if connection.idle():
                log.debug("idle gRPC client connection closed")
                connection.drain(f"no call for {self.idle_timeout:g} s")
        self._sweeper = asyncio.get_running_loop().call_later(self.idle_timeout, self._sweep)

    async def stop(self, grace: float) -> None:
        """No new connections or calls; calls in flight get `grace` seconds to be answered."""
        if self._server is None:
            return
        self._server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        for connection in list(self.connections):
            connection.shut()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), grace)
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.abort()
        await self._server.wait_closed()
        if self._path is not None:
            self._path.unlink(missing_ok=True)

    def opened(self, connection: Connection) -> bool:
        if len(self.connections) >= MAX_CONNECTIONS:
            return False
        self.connections.add(connection)
        self._idle.clear()
        return True

    def closed(self, connection: Connection) -> None:
        self.connections.discard(connection)
        if not self.connections:
            self._idle.set()

    def dispatch(self, stream: Stream, connection: Connection) -> None:
        """A whole request arrived: check it is a gRPC call we serve, then call its handler."""
        headers = stream.headers
        if headers.get(b":method") != b"POST":
            connection.answer_error(stream, Status.UNIMPLEMENTED, "gRPC calls are POSTs",
                                    http_status(405))  # fmt: skip
            return
        if not headers.get(b"content-type", b"").startswith(b"application/grpc"):
            connection.answer_error(stream, Status.UNKNOWN, "content-type is not application/grpc",
                                    http_status(415))  # fmt: skip
            return
        handler = self.methods.get(headers.get(b":path", b""))
        if handler is None:
            path = headers.get(b":path", b"").decode(errors="replace")[:200]
            connection.answer_error(stream, Status.UNIMPLEMENTED, f"unknown method {path}")
            return
        message = self._message(stream, connection)
        if message is not None:
            self._call(handler, message, stream, connection)

    def _message(self, stream: Stream, connection: Connection) -> bytes | None:
        body = stream.body
        problem = None
        if len(body) < PREFIX:
            problem = (Status.INTERNAL, "a unary call needs one request message")
        elif body[0] != 0:
            problem = (Status.UNIMPLEMENTED, "compressed messages are not accepted")
        elif int.from_bytes(body[1:PREFIX]) != len(body) - PREFIX:
            problem = (Status.INTERNAL, "a unary call takes exactly one request message")
        if problem is not None:
            connection.answer_error(stream, *problem)
            return None
        return bytes(body[PREFIX:])

    def _call(self, handler: Handler, message: bytes, stream: Stream,
              connection: Connection) -> None:  # fmt: skip
        stream.task = invoke(handler, message, functools.partial(_settled, connection, stream))


def invoke(handler: Handler, message: bytes, answer: Callable[[bytes | RpcError], None]
           ) -> asyncio.Future[bytes] | None:  # fmt: skip
    """Call `handler` and tell `answer` its result: the response message, or the RpcError
    (INTERNAL for a bug, logged). The future of an awaitable reply is returned, for cancelling."""
    try:
        reply = handler(message)
    except RpcError as exc:
        answer(exc)
        return None
    except Exception:
        log.exception("gRPC handler failed")
        answer(INTERNAL)
        return None
    if isinstance(reply, bytes):
        answer(reply)
        return None
    if isinstance(reply, Later):
        reply.on_settle(answer)
        return None
    future = asyncio.ensure_future(reply)
    future.add_done_callback(functools.partial(_answered, answer))
    return future


INTERNAL = RpcError(Status.INTERNAL, "internal error")


def _settled(connection: Connection, stream: Stream, result: bytes | RpcError) -> None:
    if isinstance(result, RpcError):
        connection.answer_error(stream, result.code, result.message)
    else:
        connection.answer(stream, result)


def _answered(answer: Callable[[bytes | RpcError], None], future: asyncio.Future[bytes]) -> None:
    if future.cancelled():
        return  # the client reset the call, or the connection went
    exc = future.exception()
    if exc is None or isinstance(exc, RpcError):
        answer(future.result() if exc is None else exc)
    else:
        log.error("gRPC handler failed", exc_info=exc)
        answer(INTERNAL)
