"""One client's HTTP/2 connection (RFC 9113) carrying unary gRPC calls.

Frames are parsed straight from the socket's bytes on the event loop; a call's answer (response
headers, the message, trailers) goes out in one write when the windows allow, as most do, and
everything written in one turn of the loop leaves in one system call. Protocol errors end the
connection with a GOAWAY naming them; a bad call gets its gRPC status and never touches others.
"""

from __future__ import annotations

import asyncio
import logging

from kedge.grpcwire.batched import Batched
from kedge.grpcwire.frames import (
    DEFAULT_FRAME_SIZE,
    DEFAULT_WINDOW,
    FRAME_HEADER,
    HEADER_SIZE,
    MAX_WINDOW,
    ConnectionError_,
    ErrorCode,
    Flag,
    Frame,
    Setting,
    frame,
    goaway,
    preface_end,
    rst_stream,
    settings,
    settings_values,
    unpadded,
    window_update,
)  # fmt: skip
from kedge.grpcwire.headers import HeaderDecoder, HpackError
from kedge.grpcwire.status import OK_TRAILERS, RESPONSE_HEADERS, Status, answer_frames, trailers
from kedge.grpcwire.stream import Host, Stream

log = logging.getLogger("kedge.grpcwire")
MAX_STREAMS = 1000  # calls in flight per connection
LAST_STREAM = 0x7FFFFFFF  # a first GOAWAY's last stream: every call the client sent is taken
DRAIN_PING = b"kedge-gw"  # the PING whose ack says the client has seen that GOAWAY
MAX_HEADER_BLOCK = 64 << 10
MAX_HEADER_LIST = 16 << 10
CONNECTION_WINDOW = 16 << 20
MAX_BUFFERED = 32 << 20  # request bytes held for calls not yet answered, all streams together


class Connection(Batched):
    def __init__(self, host: Host) -> None:
        super().__init__()
        self.host = host
        self.stream_window = host.max_body + DEFAULT_FRAME_SIZE  # room to see one too large
        self.streams: dict[int, Stream] = {}
        self.decoder = HeaderDecoder()
        self.last_stream = 0
        self.peer_window, self.peer_frame = DEFAULT_WINDOW, DEFAULT_FRAME_SIZE
        self.send_window = DEFAULT_WINDOW
        self.closing = False  # GOAWAY sent: no new calls
        self._draining: str | None = None  # why a first GOAWAY was sent, until its PING ack
        self._buffer = bytearray()
        self._settled = False  # preface and first SETTINGS seen
        self._preface_due: asyncio.TimerHandle | None = None
        self._swept = 0  # last_stream when the server last looked for idle connections
        self._consumed = 0  # DATA bytes not yet given back to the connection window
        self._receive_window = CONNECTION_WINDOW  # what the client may still send
        self._buffered = 0  # bytes of the bodies of the streams open
        self._continuing: tuple[int, int, bytearray] | None = None
        self._blocked: list[Stream] = []
        self._handlers = {
            Frame.DATA: self._data, Frame.HEADERS: self._headers, Frame.PRIORITY: self._priority,
            Frame.RST_STREAM: self._rst, Frame.SETTINGS: self._settings, Frame.PING: self._ping,
            Frame.GOAWAY: self._goaway, Frame.WINDOW_UPDATE: self._window_update,
            Frame.CONTINUATION: self._continuation, Frame.PUSH_PROMISE: self._push_promise,
        }  # fmt: skip

    # --- the socket ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if not self.host.opened(self):
            self.fail(ErrorCode.ENHANCE_YOUR_CALM, "too many connections")
            return
        self.write(settings({Setting.MAX_CONCURRENT_STREAMS: MAX_STREAMS,
                             Setting.INITIAL_WINDOW_SIZE: self.stream_window,
                             Setting.MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST}))  # fmt: skip
        self.write(window_update(0, CONNECTION_WINDOW - DEFAULT_WINDOW))
        self._preface_due = asyncio.get_running_loop().call_later(
            self.host.preface_timeout, self._no_preface
        )

    def _no_preface(self) -> None:
        """A client that connects and says nothing gives its slot back."""
        wait = self.host.preface_timeout
        self.fail(ErrorCode.PROTOCOL_ERROR, f"no HTTP/2 client preface within {wait:g} s")

    def connection_lost(self, exc: Exception | None) -> None:
        if self._preface_due is not None:
            self._preface_due.cancel()
        for stream in self.streams.values():
            if stream.task is not None:
                stream.task.cancel()
        self.streams.clear()
        self.host.closed(self)

    def pause_writing(self) -> None:  # the client reads slower than it asks: stop reading
        assert self.transport is not None
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        assert self.transport is not None
        self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        try:
            at = 0 if self._settled else self._preface(buffer)
            if at < 0:
                return  # the preface is not all here yet
            while len(buffer) - at >= HEADER_SIZE:
                word, flags, stream = FRAME_HEADER.unpack_from(buffer, at)
                end = at + HEADER_SIZE + (word >> 8)
                if word >> 8 > DEFAULT_FRAME_SIZE:
                    raise ConnectionError_(ErrorCode.FRAME_SIZE_ERROR, "frame over 16384 bytes")
                if end > len(buffer):
                    break
                kind = word & 0xFF
                if self._continuing is not None and kind != Frame.CONTINUATION:
                    raise ConnectionError_(ErrorCode.PROTOCOL_ERROR, "header block interrupted")
                handler = self._handlers.get(kind)
                if handler is not None:  # frames of unknown types are ignored (RFC 9113 4.1)
                    handler(flags, stream & 0x7FFFFFFF, bytes(buffer[at + 9 : end]))
                at = end
            del buffer[:at]
        except ConnectionError_ as exc:
            self.fail(exc.code, exc.reason)

    def _preface(self, buffer: bytearray) -> int:
        at = preface_end(buffer)
        if at >= 0:
            self._settled = True
            if self._preface_due is not None:
                self._preface_due.cancel()
        return at

    def fail(self, code: ErrorCode, reason: str) -> None:
        """A connection error: GOAWAY with the reason, then the connection is closed."""
        log.warning("gRPC client connection ended: %s", reason, extra={"code": code.name})
        self.write(goaway(self.last_stream, code, reason))
        self._flush()
        if self.transport is not None:
            self.transport.close()

    def idle(self) -> bool:
        """No call open, and none opened since the last time asked."""
        idle = self._settled and not self.streams and self.last_stream == self._swept
        self._swept = self.last_stream
        return idle

    def drain(self, reason: str) -> None:
        """Close a connection a call may be on its way on (RFC 9113 6.8): a GOAWAY taking every
        stream, and a PING whose ack says the client saw it, before the final GOAWAY. Asked
        again before the ack: closed all the same."""
        if self._draining is not None or self.closing:
            self.shut(self._draining or reason)
            return
        self._draining = reason
        self.write(goaway(LAST_STREAM, ErrorCode.NO_ERROR, reason))
        self.write(frame(Frame.PING, 0, 0, DRAIN_PING))

    def shut(self, reason: str = "") -> None:
        """Stop taking calls (the ones in flight finish)."""
        if not self.closing:
            self.closing = True
            self.write(goaway(self.last_stream, ErrorCode.NO_ERROR, reason))
        if not self.streams and self.transport is not None:
            self._flush()
            self.transport.close()

    # --- frames ---

    def _data(self, flags: int, stream_id: int, payload: bytes) -> None:
        self._receive_window -= len(payload)
        if self._receive_window < 0:
            raise ConnectionError_(ErrorCode.FLOW_CONTROL_ERROR, "DATA beyond the window")
        self._consumed += len(payload)
        if self._consumed >= CONNECTION_WINDOW // 2:
            self.write(window_update(0, self._consumed))
            self._receive_window += self._consumed
            self._consumed = 0
        stream = self.streams.get(stream_id)
        if stream is None or stream.ended:
            if stream_id == 0 or stream_id > self.last_stream:
                raise ConnectionError_(ErrorCode.PROTOCOL_ERROR, "DATA on an idle stream")
            return  # a call already answered or reset: its late bytes are dropped
        stream.received += len(payload)
        if stream.received > self.stream_window:
            self.reset(stream, ErrorCode.FLOW_CONTROL_ERROR)
            return
        content = unpadded(payload) if flags & Flag.PADDED else payload
        stream.body += content
        self._buffered += len(content)
        if self._buffered > MAX_BUFFERED:
            raise ConnectionError_(ErrorCode.ENHANCE_YOUR_CALM, "over 32 MiB of requests held")
        if flags & Flag.END_STREAM:
            stream.ended = True
        if len(stream.body) > self.host.max_body:
            self.answer_error(stream, Status.RESOURCE_EXHAUSTED,
                              f"request over {self.host.max_body - 5} bytes")  # fmt: skip
        elif stream.ended:
            self.host.dispatch(stream, self)

    def _headers(self, flags: int, stream: int, payload: bytes) -> None:
        if flags & Flag.PADDED:
            payload = unpadded(payload)
        if flags & Flag.PRIORITY:
            payload = payload[5:]
        if flags & Flag.END_HEADERS:
            self._header_block(flags, stream, payload)
        else:
            self._continuing = (stream, flags, bytearray(payload))

    def _continuation(self, flags: int, stream: int, payload: bytes) -> None:
        if self._continuing is None or self._continuing[0] != stream:
            raise ConnectionError_(ErrorCode.PROTOCOL_ERROR, "CONTINUATION out of place")
        block = self._continuing[2]
        block += payload
        if len(block) > MAX_HEADER_BLOCK:
            raise ConnectionError_(ErrorCode.ENHANCE_YOUR_CALM, "header block over 64 KiB")
        if flags & Flag.END_HEADERS:
            first_flags, self._continuing = self._continuing[1], None
            self._header_block(first_flags, stream, bytes(block))

    def _header_block(self, flags: int, stream_id: int, block: bytes) -> None:
        try:
            headers, size = self.decoder.fields(block)
        except HpackError as exc:
            raise ConnectionError_(ErrorCode.COMPRESSION_ERROR, str(exc)) from exc
        if stream_id in self.streams:  # trailers: a gRPC client sends none, but may
            stream = self.streams[stream_id]
            if stream.ended or not flags & Flag.END_STREAM:
                self.reset(stream, ErrorCode.PROTOCOL_ERROR)
            else:
                stream.ended = True
                self.host.dispatch(stream, self)
            return
        if stream_id % 2 == 0 or stream_id <= self.last_stream:
            raise ConnectionError_(ErrorCode.PROTOCOL_ERROR, f"stream {stream_id} is not new")
        self.last_stream = stream_id
        if self.closing or len(self.streams) >= MAX_STREAMS:
            self.write(rst_stream(stream_id, ErrorCode.REFUSED_STREAM))
            return
        stream = self.streams[stream_id] = Stream(stream_id, headers, self.peer_window)
        if size > MAX_HEADER_LIST:
            self.answer_error(stream, Status.RESOURCE_EXHAUSTED, "header list over 16 KiB")
        elif flags & Flag.END_STREAM:
            stream.ended = True
            self.host.dispatch(stream, self)

    def _priority(self, _flags: int, _stream: int, _payload: bytes) -> None:
        """Priorities are advice; every call here is as urgent as the next."""

    def _push_promise(self, _flags: int, _stream: int, _payload: bytes) -> None:
        raise ConnectionError_(ErrorCode.PROTOCOL_ERROR, "a client cannot push")

    def _rst(self, _flags: int, stream_id: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise ConnectionError_(ErrorCode.FRAME_SIZE_ERROR, "RST_STREAM is 4 bytes")
        stream = self.streams.get(stream_id)
        if stream is not None:
            self._forget(stream)
            if stream.task is not None:
                stream.task.cancel()  # the client gave up on the call
        self._closed_one()

    def _settings(self, flags: int, stream: int, payload: bytes) -> None:
        if stream:
            raise ConnectionError_(ErrorCode.PROTOCOL_ERROR, "SETTINGS on a stream")
        if flags & Flag.ACK:
            return
        for key, value in settings_values(payload):
            if key == Setting.INITIAL_WINDOW_SIZE:
                for open_stream in self.streams.values():
                    open_stream.window += value - self.peer_window
                self.peer_window = value
            elif key == Setting.MAX_FRAME_SIZE:
                self.peer_frame = value
        self.write(frame(Frame.SETTINGS, Flag.ACK, 0))
        self._drain()

    def _ping(self, flags: int, stream: int, payload: bytes) -> None:
        if stream:
            raise ConnectionError_(ErrorCode.PROTOCOL_ERROR, "PING on a stream")
        if len(payload) != 8:
            raise ConnectionError_(ErrorCode.FRAME_SIZE_ERROR, "PING is 8 bytes")
        if not flags & Flag.ACK:
            self.write(frame(Frame.PING, Flag.ACK, 0, payload))
        elif payload == DRAIN_PING and self._draining is not None:
            self.shut(self._draining)  # the client has seen the first GOAWAY

    def _goaway(self, _flags: int, _stream: int, _payload: bytes) -> None:
        self.shut()  # the client starts nothing new; what is in flight is answered

    def _window_update(self, _flags: int, stream_id: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise ConnectionError_(ErrorCode.FRAME_SIZE_ERROR, "WINDOW_UPDATE is 4 bytes")
        increment = int.from_bytes(payload) & 0x7FFFFFFF
        if stream_id == 0:
            if not increment or self.send_window + increment > MAX_WINDOW:
                raise ConnectionError_(ErrorCode.FLOW_CONTROL_ERROR, "bad connection window")
            self.send_window += increment
        elif (stream := self.streams.get(stream_id)) is not None:
            if not increment or stream.window + increment > MAX_WINDOW:
                self.reset(stream, ErrorCode.FLOW_CONTROL_ERROR)
                return
            stream.window += increment
        self._drain()

    # --- answers ---

    def answer(self, stream: Stream, message: bytes) -> None:
        """The call's response message, then OK trailers."""
        if self.streams.get(stream.id) is not stream:
            return  # reset by the client meanwhile
        data = len(message).to_bytes(5) + message  # flag 0 (not compressed), 4-byte length
        size = len(data)
        if size <= stream.window and size <= self.send_window and size <= self.peer_frame:
            stream.window -= size
            self.send_window -= size
            self.write(answer_frames(stream.id, data))
            self._done(stream)
            return
        self.write(frame(Frame.HEADERS, Flag.END_HEADERS, stream.id, RESPONSE_HEADERS))
        stream.pending = memoryview(data)
        self._blocked.append(stream)
        self._drain()

    def answer_error(self, stream: Stream, code: Status, message: str, head: bytes =
                     RESPONSE_HEADERS) -> None:  # fmt: skip
        """A trailers-only response (`head`: its HTTP status and content type); a call still
        sending is then reset (RFC 9113 8.1)."""
        if self.streams.get(stream.id) is not stream:
            return
        self._end(stream, head + trailers(code, message))
        if not stream.ended:
            self.write(rst_stream(stream.id, ErrorCode.NO_ERROR))

    def reset(self, stream: Stream, code: ErrorCode) -> None:
        self.write(rst_stream(stream.id, code))
        if self._forget(stream) and stream.task is not None:
            stream.task.cancel()
        self._closed_one()

    def _end(self, stream: Stream, block: bytes) -> None:
        self.write(frame(Frame.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, stream.id, block))
        self._done(stream)

    def _done(self, stream: Stream) -> None:
        self._forget(stream)
        self._closed_one()

    def _forget(self, stream: Stream) -> bool:
        """The stream is done here; False if it was already."""
        if self.streams.pop(stream.id, None) is None:
            return False
        self._buffered -= len(stream.body)
        stream.body = bytearray()
        return True

    def _closed_one(self) -> None:
        if self.closing and not self.streams:
            self.shut()

    def _drain(self) -> None:
        """Send what waited for window, as far as the windows now allow (a client that opens
        its window a byte at a time costs a step per update, not one per blocked call)."""
        for stream in list(self._blocked):
            if self.send_window <= 0:
                break
            if self.streams.get(stream.id) is not stream:  # reset meanwhile
                self._blocked.remove(stream)
                continue
            pending = stream.pending
            while pending is not None and pending.nbytes:
                size = min(pending.nbytes, stream.window, self.send_window, self.peer_frame)
                if size <= 0:
                    break
                stream.window -= size
                self.send_window -= size
                self.write(frame(Frame.DATA, 0, stream.id, bytes(pending[:size])))
                pending = pending[size:]
            stream.pending = pending
            if pending is not None and not pending.nbytes:
                self._blocked.remove(stream)
                stream.pending = None
                if self.streams.get(stream.id) is stream:
                    self._end(stream, OK_TRAILERS)
