"""kedge.grpcwire against grpcio's own client (an independent HTTP/2 and gRPC implementation),
and against raw bytes that break the protocol: each gets its error, none stops the server."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from harness.support import wait_until
from kedge.grpcwire.frames import PREFACE, ErrorCode, Flag, Frame, frame, settings
from kedge.grpcwire.headers import literal, literal_indexed_name
from kedge.grpcwire.server import GrpcServer, Later
from kedge.grpcwire.status import RpcError, Status

started = asyncio.Event()
cancelled: list[bool] = []


async def slow(data: bytes) -> bytes:
    started.set()
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        cancelled.append(True)
        raise
    return data


def refuse(_data: bytes) -> bytes:
    raise RpcError(Status.NOT_FOUND, "device default/ü 100% gone")


def broken(_data: bytes) -> bytes:
    raise KeyError("a bug")


held: list[tuple[bytes, Later]] = []


def hold(data: bytes) -> Later:
    """Answered when the test settles it, as DMI's reports are once their commit is done."""
    held.append((data, Later()))
    return held[-1][1]


METHODS = {"/t.S/Echo": lambda data: data, "/t.S/Slow": slow, "/t.S/Refuse": refuse,
           "/t.S/Broken": broken, "/t.S/Big": lambda data: data * 200_000,
           "/t.S/Hold": hold}  # fmt: skip


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Path]:
    path = tmp_path / "g.sock"
    serving = GrpcServer(METHODS, max_message=1 << 20)
    await serving.start(path)
    yield path
    await serving.stop(1.0)
    assert not path.exists()  # noqa: ASYNC240 - a stat in a test


def _same(data: bytes) -> bytes:
    return data


def _stub(channel: grpc.aio.Channel, method: str) -> grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]:
    return channel.unary_unary(method, request_serializer=_same, response_deserializer=_same)


async def _call(path: Path, method: str, data: bytes) -> bytes:
    async with grpc.aio.insecure_channel(f"unix:{path}") as channel:
        return bytes(await _stub(channel, method)(data, timeout=10))


async def _status(path: Path, method: str, data: bytes) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _call(path, method, data)
    return info.value.code(), str(info.value.details())


async def test_grpcio_calls_are_answered(server: Path) -> None:
    assert server.stat().st_mode & 0o777 == 0o600  # noqa: ASYNC240 - a stat in a test
    assert await _call(server, "/t.S/Echo", b"hello") == b"hello"
    assert await _call(server, "/t.S/Echo", b"") == b""
    big = await _call(server, "/t.S/Big", b"0123456789")  # 2 MB: past every initial window
    assert big == b"0123456789" * 200_000
    async with grpc.aio.insecure_channel(f"unix:{server}") as channel:
        echo = _stub(channel, "/t.S/Echo")
        answers = await asyncio.gather(*(echo(b"%d" % n, timeout=10) for n in range(2000)))
    assert answers == [b"%d" % n for n in range(2000)]


async def test_failures_carry_their_status_and_message(server: Path) -> None:
    assert await _status(server, "/t.S/Refuse", b"x") == (grpc.StatusCode.NOT_FOUND,
                                                          "device default/ü 100% gone")  # fmt: skip
    assert await _status(server, "/t.S/Broken", b"x") == (grpc.StatusCode.INTERNAL,
                                                          "internal error")  # fmt: skip
    code, why = await _status(server, "/t.S/Nope", b"x")
    assert code == grpc.StatusCode.UNIMPLEMENTED and "/t.S/Nope" in why
    code, why = await _status(server, "/t.S/Echo", b"x" * (2 << 20))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "1048576" in why
    assert await _call(server, "/t.S/Echo", b"still here") == b"still here"


async def test_a_call_the_client_gives_up_on_is_cancelled_at_the_server(server: Path) -> None:
    started.clear()
    cancelled.clear()
    async with grpc.aio.insecure_channel(f"unix:{server}") as channel:
        call = _stub(channel, "/t.S/Slow")(b"x", timeout=30)
        await asyncio.wait_for(started.wait(), 10)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
    await wait_until(lambda: cancelled, what="the server's handler cancelled by the reset")


async def test_answers_settled_later_reach_their_calls(server: Path) -> None:
    held.clear()
    async with grpc.aio.insecure_channel(f"unix:{server}") as channel:
        stub = _stub(channel, "/t.S/Hold")
        calls = [asyncio.ensure_future(stub(b"%d" % n, timeout=10)) for n in range(3)]
        gone = stub(b"gone", timeout=10)
        await wait_until(lambda: len(held) == 4, what="four held calls")
        gone.cancel()  # reset by the client before its answer is ready
        await wait_until(gone.done, what="the reset")
        answers = {data: later for data, later in held}
        answers[b"gone"].settle(b"too late")  # dropped: the stream is gone
        answers[b"0"].settle(b"zero")
        answers[b"1"].settle(RpcError(Status.UNAVAILABLE, "store write failed"))
        answers[b"2"].settle(b"two")
        answers[b"2"].settle(b"again")  # a second settle is ignored
        assert await calls[0] == b"zero" and await calls[2] == b"two"
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await calls[1]
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert info.value.details() == "store write failed"
        assert await _stub(channel, "/t.S/Echo")(b"still", timeout=10) == b"still"


def _request(stream: int, path: bytes = b"/t.S/Echo", content_type: bytes = b"application/grpc",
             method: bytes = b"\x83") -> bytes:  # fmt: skip
    block = (method + b"\x86" + literal_indexed_name(4, path)
             + literal_indexed_name(31, content_type) + literal(b"te", b"trailers"))  # fmt: skip
    return frame(Frame.HEADERS, Flag.END_HEADERS, stream, block)


async def _exchange(path: Path, data: bytes) -> list[tuple[int, int, int, bytes]]:
    """Frames the server sends back for `data` (after the preface and SETTINGS), until it
    closes or goes quiet."""
    reader, writer = await asyncio.open_unix_connection(str(path))
    writer.write(data)
    buffer = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), 1.0):
            buffer += chunk
    except (TimeoutError, ConnectionError):  # quiet, or closed while we still wrote
        pass
    finally:
        writer.close()
    return _frames(buffer)


def _frames(buffer: bytes) -> list[tuple[int, int, int, bytes]]:
    frames = []
    while len(buffer) >= 9:
        length = int.from_bytes(buffer[:3])
        kind, flags = buffer[3], buffer[4]
        stream = struct.unpack(">I", buffer[5:9])[0]
        frames.append((kind, flags, stream, buffer[9 : 9 + length]))
        buffer = buffer[9 + length :]
    return frames


def _goaway(frames: list[tuple[int, int, int, bytes]]) -> tuple[ErrorCode, bytes] | None:
    for kind, _flags, _stream, payload in frames:
        if kind == Frame.GOAWAY:
            return ErrorCode(struct.unpack(">I", payload[4:8])[0]), payload[8:]
    return None


HELLO = PREFACE + settings({})


@pytest.mark.parametrize(
    ("data", "code", "why"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", ErrorCode.PROTOCOL_ERROR, b"not an HTTP/2 client"),
        (PREFACE + frame(Frame.PING, 0, 0, b"12345678"), ErrorCode.PROTOCOL_ERROR, b"preface"),
        (HELLO + struct.pack(">I", 20_000)[1:] + b"\x00\x00\x00\x00\x00\x01",
         ErrorCode.FRAME_SIZE_ERROR, b"16384"),
        (HELLO + frame(Frame.HEADERS, Flag.END_HEADERS, 1, b"\xff\xff\xff"),
         ErrorCode.COMPRESSION_ERROR, b""),
        (HELLO + _request(2), ErrorCode.PROTOCOL_ERROR, b"not new"),
        (HELLO + frame(Frame.DATA, 0, 0, b"x"), ErrorCode.PROTOCOL_ERROR, b"idle"),
        (HELLO + frame(Frame.PING, 0, 0, b"1234"), ErrorCode.FRAME_SIZE_ERROR, b"PING"),
        (HELLO + frame(Frame.WINDOW_UPDATE, 0, 0, b"\x00\x00\x00\x00"),
         ErrorCode.FLOW_CONTROL_ERROR, b"window"),
        (HELLO + frame(Frame.SETTINGS, 0, 0, b"\x00\x04\xff\xff\xff\xff"),
         ErrorCode.FLOW_CONTROL_ERROR, b"2^31"),
        (HELLO + frame(Frame.HEADERS, 0, 1, b"\x83") + frame(Frame.PING, 0, 0, b"12345678"),
         ErrorCode.PROTOCOL_ERROR, b"interrupted"),
        (HELLO + frame(Frame.PUSH_PROMISE, Flag.END_HEADERS, 1, b"\x00\x00\x00\x02"),
         ErrorCode.PROTOCOL_ERROR, b"push"),
    ],
)  # fmt: skip
async def test_protocol_errors_end_that_connection_only(
    server: Path, data: bytes, code: ErrorCode, why: bytes
) -> None:
    found = _goaway(await _exchange(server, data))
    assert found is not None and found[0] == code and why in found[1]
    assert await _call(server, "/t.S/Echo", b"after") == b"after"


async def test_requests_held_past_32_mib_end_the_connection(server: Path) -> None:
    """1 MiB (under the message limit) on each of 34 calls that never end."""
    chunk = frame(Frame.DATA, 0, 0, b"x" * 16_384)[:5]  # header of a 16 KiB DATA frame
    data = bytearray(HELLO)
    for stream in range(1, 69, 2):
        data += _request(stream)
        data += (chunk + stream.to_bytes(4) + b"x" * 16_384) * 64
    found = _goaway(await _exchange(server, bytes(data)))
    assert found is not None and found[0] == ErrorCode.ENHANCE_YOUR_CALM and b"32 MiB" in found[1]
    assert await _call(server, "/t.S/Echo", b"after") == b"after"


def _body(message: bytes, compressed: int = 0) -> bytes:
    return bytes((compressed,)) + len(message).to_bytes(4) + message


@pytest.mark.parametrize(
    ("request_frames", "expected"),
    [
        (_request(1, method=b"\x82") + frame(Frame.DATA, 1, 1, _body(b"x")), b"405"),
        (_request(1, content_type=b"text/plain") + frame(Frame.DATA, 1, 1, _body(b"x")), b"415"),
        (_request(1) + frame(Frame.DATA, 1, 1, _body(b"x", compressed=1)), b"grpc-status\x0212"),
        (_request(1) + frame(Frame.DATA, 1, 1, _body(b"x") + _body(b"y")), b"exactly one"),
        (_request(1) + frame(Frame.DATA, 1, 1, b"\x00\x00"), b"needs one request"),
        (_request(1) + frame(Frame.DATA, Flag.PADDED | 1, 1, b"\x03" + _body(b"ok") + b"\x00" * 3),
         b"grpc-status\x010"),
    ],
)  # fmt: skip
async def test_bad_calls_get_an_answer_and_the_connection_lives(
    server: Path, request_frames: bytes, expected: bytes
) -> None:
    frames = await _exchange(server, HELLO + request_frames + _request(3)
                             + frame(Frame.DATA, 1, 3, _body(b"next")))  # fmt: skip
    ends = [p for kind, flags, stream, p in frames
            if kind == Frame.HEADERS and flags & Flag.END_STREAM]  # fmt: skip
    assert len(ends) == 2 and expected in ends[0]
    assert _goaway(frames) is None
    assert any(kind == Frame.DATA and p == _body(b"next") for kind, _f, _s, p in frames)


async def test_stop_answers_calls_in_flight_and_refuses_new_ones(tmp_path: Path) -> None:
    path = tmp_path / "g.sock"
    release = asyncio.Event()

    async def held(data: bytes) -> bytes:
        await release.wait()
        return data

    serving = GrpcServer({"/t.S/Held": held})
    await serving.start(path)
    async with grpc.aio.insecure_channel(f"unix:{path}") as channel:
        call = _stub(channel, "/t.S/Held")(b"done", timeout=10)
        connection = await wait_until(
            lambda: next((c for c in serving.connections if c.streams), None), what="the call"
        )
        stopping = asyncio.create_task(serving.stop(5.0))
        await wait_until(lambda: connection.closing, what="the GOAWAY")
        assert not stopping.done()  # the call is still held: the stop waits for it
        release.set()
        assert await call == b"done"
        await stopping
    assert not path.exists()  # noqa: ASYNC240 - a stat in a test
    with pytest.raises(OSError):
        await asyncio.open_unix_connection(str(path))


async def test_a_client_that_sends_no_preface_is_closed_and_frees_its_slot(tmp_path: Path) -> None:
    path = tmp_path / "p.sock"
    serving = GrpcServer(METHODS, preface_timeout=0.3)
    await serving.start(path)
    try:
        for said in (b"", PREFACE[:10]):  # nothing; half a preface, then silence
            reader, writer = await asyncio.open_unix_connection(str(path))
            writer.write(said)
            received = await asyncio.wait_for(reader.read(), 10)  # until the server closes
            writer.close()
            frames = [(k, p) for k, _f, _s, p in _frames(received)]
            assert frames[-1][0] == Frame.GOAWAY and b"no HTTP/2 client preface" in frames[-1][1]
        await wait_until(lambda: not serving.connections, what="the slots given back")
        assert await _call(path, "/t.S/Echo", b"on time") == b"on time"
    finally:
        await serving.stop(1.0)


async def test_a_connection_without_calls_gets_a_goaway_and_clients_reconnect(
    tmp_path: Path,
) -> None:
    path = tmp_path / "i.sock"
    serving = GrpcServer(METHODS, idle_timeout=0.2)
    await serving.start(path)
    try:
        reader, writer = await asyncio.open_unix_connection(str(path))
        writer.write(HELLO + _request(1) + frame(Frame.DATA, Flag.END_STREAM, 1, _body(b"x")))
        received = await asyncio.wait_for(reader.read(), 10)  # answered, then closed when idle
        writer.close()
        found = _goaway(_frames(received))
        assert found == (ErrorCode.NO_ERROR, b"no call for 0.2 s")
        assert any(k == Frame.DATA and p == _body(b"x") for k, _f, _s, p in _frames(received))
        async with grpc.aio.insecure_channel(f"unix:{path}") as channel:
            echo = _stub(channel, "/t.S/Echo")
            assert await echo(b"first", timeout=10) == b"first"
            first = next(iter(serving.connections))
            await wait_until(lambda: first not in serving.connections, what="the idle close")
            assert await echo(b"again", timeout=10) == b"again"  # grpcio reconnects
    finally:
        await serving.stop(1.0)


async def test_an_idle_close_still_answers_a_call_sent_before_the_client_saw_it(
    tmp_path: Path,
) -> None:
    """First a GOAWAY taking every stream and a PING; a call the client had on its way is
    answered; the final GOAWAY (naming that call's stream) comes only after the PING's ack."""
    path = tmp_path / "d.sock"
    serving = GrpcServer(METHODS, idle_timeout=0.2)
    await serving.start(path)
    try:
        reader, writer = await asyncio.open_unix_connection(str(path))
        writer.write(HELLO)
        seen = b""
        while not any(k == Frame.PING for k, *_ in _frames(seen)):
            chunk = await asyncio.wait_for(reader.read(65536), 10)
            assert chunk, f"closed without a PING: {_frames(seen)}"
            seen += chunk
        first = next(p for k, _f, _s, p in _frames(seen) if k == Frame.GOAWAY)
        assert struct.unpack(">I", first[:4])[0] == 0x7FFFFFFF  # every stream still taken
        ping = next(p for k, _f, _s, p in _frames(seen) if k == Frame.PING)
        writer.write(_request(1) + frame(Frame.DATA, Flag.END_STREAM, 1, _body(b"late")))
        writer.write(frame(Frame.PING, Flag.ACK, 0, ping))
        rest = await asyncio.wait_for(reader.read(), 10)  # to the close
        writer.close()
        frames = _frames(seen + rest)
        assert any(k == Frame.DATA and p == _body(b"late") for k, _f, _s, p in frames)
        last = [p for k, _f, _s, p in frames if k == Frame.GOAWAY][-1]
        assert struct.unpack(">I", last[:4])[0] == 1 and last[8:] == b"no call for 0.2 s"
    finally:
        await serving.stop(1.0)


async def test_a_connection_with_a_call_open_is_not_idle(tmp_path: Path) -> None:
    path = tmp_path / "o.sock"
    serving = GrpcServer(METHODS, idle_timeout=0.05)
    await serving.start(path)
    try:
        async with grpc.aio.insecure_channel(f"unix:{path}") as channel:
            call = _stub(channel, "/t.S/Hold")(b"held", timeout=10)
            await wait_until(lambda: held and held[-1][0] == b"held", what="the call")
            connection = next(iter(serving.connections))
            await asyncio.sleep(0.5)  # ten sweep periods: the time passing is what is tested
            assert connection in serving.connections and not connection.closing
            held[-1][1].settle(b"answered")
            assert await call == b"answered"
    finally:
        await serving.stop(1.0)
