"""A gRPC load client cheap enough to outrun the server it measures: unary calls on raw HTTP/2
(requests encoded once; every answer's headers decoded, its trailers checked), WINDOW calls in
flight on one connection. grpcio's own client costs about as much per call as the server, so
two of its processes on this machine could not show a server faster than grpcio.

Each request's header block is what grpc-go (KubeEdge's mapper framework) sends: its HPACK
encoder adds every field to the table and Huffman-codes strings, so after the first call the
fixed fields are references whose indices move on every call, because each call adds its own
grpc-timeout; the server decodes a new block each call, never a remembered one. The blocks are
encoded once (hpack's encoder, which indexes as Go's does) as a cycle that starts from an empty
table: a cycle's first block adds every field again, so the server's table always holds what
the next block refers to.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable, Sequence
from multiprocessing.sharedctypes import Synchronized

from hpack import Decoder, Encoder

from kedge.grpcwire.frames import (
    FRAME_HEADER,
    HEADER_SIZE,
    PREFACE,
    Flag,
    Frame,
    Setting,
    frame,
    settings,
    window_update,
)

WINDOW = 1 << 30  # what the client lets the server send, connection and streams


CYCLE = 5000  # header blocks encoded before a client starts


def _fields(path: str) -> list[tuple[bytes, bytes]]:
    return [(b":method", b"POST"), (b":scheme", b"http"), (b":path", path.encode()),
            (b":authority", b"localhost"), (b"content-type", b"application/grpc"),
            (b"user-agent", b"grpc-go/1.65.0"), (b"te", b"trailers")]  # fmt: skip


def _timeout(n: int) -> tuple[bytes, bytes]:
    """grpc-timeout: what is left of the call's deadline, a new value every call."""
    return b"grpc-timeout", b"%du" % (999_000 + n % 997)


def header_blocks(path: str, count: int = CYCLE) -> list[bytes]:
    """`count` calls' header blocks on one connection, from its empty table on."""
    encoder, fixed = Encoder(), _fields(path)
    return [encoder.encode([*fixed, _timeout(n)], huffman=True) for n in range(count)]


class LoadProtocol(asyncio.Protocol):
    def __init__(self, path: str, messages: Sequence[bytes], window: int,
                 count: Callable[[bool], None]) -> None:  # fmt: skip
        self.blocks = header_blocks(path)
        self.bodies = [len(m).to_bytes(5) + m for m in messages]
        self.window, self.count = window, count
        self.transport: asyncio.Transport | None = None
        self.next_stream, self.sent, self.owed = 1, 0, 0  # owed: calls waiting for window
        self.send_window = 65_535  # the server's connection window, then its updates
        self.buffer = bytearray()
        self.received = 0  # DATA bytes to give back
        self.decoder = Decoder()
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(PREFACE + settings({Setting.INITIAL_WINDOW_SIZE: WINDOW})
                        + window_update(0, WINDOW - 65_535))  # fmt: skip
        transport.write(b"".join(self._call() for _ in range(self.window)))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def _call(self) -> bytes:
        stream, self.next_stream = self.next_stream, self.next_stream + 2
        body = self.bodies[self.sent % len(self.bodies)]
        headers = self.blocks[self.sent % len(self.blocks)]  # in order: the table follows them
        self.sent += 1
        self.send_window -= len(body)
        return (frame(Frame.HEADERS, Flag.END_HEADERS, stream, headers)
                + frame(Frame.DATA, Flag.END_STREAM, stream, body))  # fmt: skip

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        at, out = 0, []
        while len(buffer) - at >= HEADER_SIZE:
            word, flags, stream = FRAME_HEADER.unpack_from(buffer, at)
            end = at + HEADER_SIZE + (word >> 8)
            if end > len(buffer):
                break
            payload = bytes(buffer[at + HEADER_SIZE : end])
            at = end
            kind = word & 0xFF
            if kind == Frame.HEADERS:  # every block, in order: the server's table follows
                headers = dict(self.decoder.decode(payload, raw=True))
                if flags & Flag.END_STREAM:
                    self.count(headers.get(b"grpc-status") == b"0")
                    self.owed += 1
            elif kind == Frame.DATA:
                self.received += len(payload)
            elif kind == Frame.WINDOW_UPDATE and stream == 0:
                self.send_window += struct.unpack(">I", payload)[0]
            elif kind == Frame.SETTINGS and not flags & Flag.ACK:
                out.append(frame(Frame.SETTINGS, Flag.ACK, 0))
            elif kind in (Frame.RST_STREAM, Frame.GOAWAY):
                self.count(False)
        del buffer[:at]
        while self.owed and self.send_window > 1 << 16:
            out.append(self._call())
            self.owed -= 1
        if self.received > WINDOW // 2:
            out.append(window_update(0, self.received))
            self.received = 0
        if out and self.transport is not None:
            self.transport.write(b"".join(out))


def run(socket: str, path: str, messages: Sequence[bytes], window: int, seconds: float,
        done: Synchronized[int], failed: Synchronized[int]) -> None:  # fmt: skip
    """Calls for `seconds` (a process's target): `done` counts answers, `failed` bad ones."""

    def count(ok: bool) -> None:
        if ok:
            done.value += 1
        else:
            failed.value += 1

    async def main() -> None:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_unix_connection(
            lambda: LoadProtocol(path, messages, window, count), socket
        )
        try:
            await asyncio.wait_for(asyncio.shield(protocol.closed), seconds)
        except TimeoutError:
            pass
        finally:
            if protocol.transport is not None:
                protocol.transport.close()

    asyncio.run(main())


def run_fresh(socket: str, path: str, messages: Sequence[bytes], concurrency: int,
              seconds: float, done: Synchronized[int],
              failed: Synchronized[int]) -> None:  # fmt: skip
    """A new connection per call, as KubeEdge's mapper framework reports (its grpcclient dials,
    calls once and closes): `concurrency` such calls at a time."""
    bodies = [len(m).to_bytes(5) + m for m in messages]
    fixed = _fields(path)  # each connection's one block: every field added to an empty table
    firsts = [Encoder().encode([*fixed, _timeout(n)], huffman=True) for n in range(997)]
    hello = PREFACE + settings({Setting.INITIAL_WINDOW_SIZE: 4 << 20})

    async def call(n: int) -> bool:
        reader, writer = await asyncio.open_unix_connection(socket)
        try:
            block, body = firsts[n % len(firsts)], bodies[n % len(bodies)]
            writer.write(hello + frame(Frame.HEADERS, Flag.END_HEADERS, 1, block)
                         + frame(Frame.DATA, Flag.END_STREAM, 1, body))  # fmt: skip
            buffer, decoder = b"", Decoder()  # the server's blocks, in order, on one table
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    return False
                buffer += chunk
                at = 0
                while len(buffer) - at >= HEADER_SIZE:
                    word, flags, stream = FRAME_HEADER.unpack_from(buffer, at)
                    payload = buffer[at + HEADER_SIZE : at + HEADER_SIZE + (word >> 8)]
                    if len(payload) < word >> 8:
                        break
                    at += HEADER_SIZE + (word >> 8)
                    if word & 0xFF == Frame.HEADERS:
                        headers = dict(decoder.decode(payload, raw=True))
                        if flags & Flag.END_STREAM:
                            return headers.get(b"grpc-status") == b"0"
                buffer = buffer[at:]
        finally:
            writer.close()

    async def worker(first: int, end: float) -> None:
        n = first
        while asyncio.get_running_loop().time() < end:
            ok = await call(n)
            if ok:
                done.value += 1
            else:
                failed.value += 1
            n += concurrency

    async def main() -> None:
        end = asyncio.get_running_loop().time() + seconds
        await asyncio.gather(*(worker(i, end) for i in range(concurrency)))

    asyncio.run(main())
