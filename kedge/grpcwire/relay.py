"""Unary calls relayed between two processes over a stream socket: a front process speaks
HTTP/2 to the clients and hands each call's method and message to the process that holds the
state, which answers each. Records are length-prefixed; everything queued in one turn of the
loop leaves in one write, so a burst of calls costs the serving process one read and one write.

    call:   call id (4 bytes), method index (2), message length (4), message
    answer: call id (4 bytes), status (1; 0: OK), length (4), response message or reason (UTF-8)
"""

from __future__ import annotations

import asyncio
import functools
import logging
import struct
from collections.abc import Iterator, Sequence

from kedge.grpcwire.batched import Batched
from kedge.grpcwire.server import Handler, Later, invoke
from kedge.grpcwire.status import RpcError, Status

log = logging.getLogger("kedge.grpcwire")
CALL = struct.Struct(">IHI")
ANSWER = struct.Struct(">IBI")
READY = 0xFFFF  # the method index of the front's first record: it listens
MAX_ANSWER = 64 << 20  # answers are not limited as requests are (a MapperRegister of every device)
GONE = RpcError(Status.UNAVAILABLE, "the serving process is gone")


class RelayError(Exception):
    """The other side broke the record format: the relay ends."""


class _Records(Batched):
    """Record framing, batched writes, and the end of the socket."""

    def __init__(self, head: struct.Struct, max_record: int) -> None:
        super().__init__()
        self._head, self._max = head, max_record
        self._buffer = bytearray()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def records(self, data: bytes) -> Iterator[tuple[int, int, bytes]]:
        """(call id, method index or status, payload) of every whole record now here."""
        buffer, head, at = self._buffer, self._head, 0
        buffer += data
        while len(buffer) - at >= head.size:
            call, kind, size = head.unpack_from(buffer, at)
            if size > self._max:
                raise RelayError(f"a record of {size} bytes (at most {self._max})")
            end = at + head.size + size
            if end > len(buffer):
                break
            yield call, kind, bytes(buffer[at + head.size : end])
            at = end
        del buffer[:at]

    def end(self, why: str) -> None:
        log.error("gRPC relay ended: %s", why)
        if self.transport is not None:
            self.transport.close()


class Front(_Records):
    """The front process's side: each method's handler forwards the call and answers when the
    serving process does."""

    def __init__(self) -> None:
        super().__init__(ANSWER, MAX_ANSWER)
        self._waiting: dict[int, Later] = {}
        self._next = 0

    def handler(self, method: int) -> Handler:
        return functools.partial(self._forward, method)

    def listening(self) -> None:
        """Tell the serving process that clients can connect now."""
        self.write(CALL.pack(0, READY, 0))

    def _forward(self, method: int, message: bytes) -> Later:
        if self.closed.done():
            raise GONE
        self._next = (self._next + 1) & 0xFFFFFFFF
        answer = self._waiting[self._next] = Later()
        self.write(CALL.pack(self._next, method, len(message)) + message)
        return answer

    def data_received(self, data: bytes) -> None:
        try:
            for call, status, payload in self.records(data):
                waiting = self._waiting.pop(call, None)
                if waiting is None:
                    raise RelayError(f"an answer to call {call}, which is not waiting")
                waiting.settle(payload if status == 0 else _error(status, payload))
        except RelayError as exc:
            self.end(str(exc))

    def connection_lost(self, exc: Exception | None) -> None:
        waiting, self._waiting = self._waiting, {}
        for answer in waiting.values():
            answer.settle(GONE)
        super().connection_lost(exc)


def _error(status: int, reason: bytes) -> RpcError:
    try:
        code = Status(status)
    except ValueError:
        code = Status.UNKNOWN
    return RpcError(code, reason.decode(errors="replace"))


class Back(_Records):
    """The serving process's side: each relayed call goes to its method's handler."""

    def __init__(self, handlers: Sequence[Handler], max_message: int) -> None:
        super().__init__(CALL, max_message)
        self.handlers = handlers
        self.ready = asyncio.Event()  # the front listens

    def data_received(self, data: bytes) -> None:
        try:
            for call, method, message in self.records(data):
                answer = functools.partial(self._answer, call)
                if method == READY:
                    self.ready.set()
                elif method >= len(self.handlers):
                    answer(RpcError(Status.UNIMPLEMENTED, f"no method {method}"))
                else:
                    invoke(self.handlers[method], message, answer)
        except RelayError as exc:
            self.end(str(exc))

    def _answer(self, call: int, result: bytes | RpcError) -> None:
        if isinstance(result, RpcError):
            reason = result.message.encode()
            self.write(ANSWER.pack(call, int(result.code), len(reason)) + reason)
        else:
            self.write(ANSWER.pack(call, 0, len(result)) + result)
