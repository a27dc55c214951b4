"""gRPC status codes and the header blocks that carry them (gRPC over HTTP/2: response headers,
then trailers with grpc-status and a percent-encoded grpc-message), and an OK answer's frames."""

from __future__ import annotations

import struct
from enum import IntEnum

from kedge.grpcwire.frames import Flag, Frame
from kedge.grpcwire.headers import literal, literal_indexed_name

STATUS_200 = b"\x88"  # the static table's ":status: 200"
CONTENT_TYPE = 31  # the static table's "content-type"
RESPONSE_HEADERS = STATUS_200 + literal_indexed_name(CONTENT_TYPE, b"application/grpc")


class Status(IntEnum):
    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


class RpcError(Exception):
    """A call's failure, answered to the client as its status and message."""

    def __init__(self, code: Status, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def percent_encoded(message: str) -> bytes:
    """grpc-message's encoding: printable ASCII but '%' as is, every other UTF-8 byte %XX."""
    return b"".join(
        bytes((b,)) if 0x20 <= b <= 0x7E and b != 0x25 else b"%%%02X" % b for b in message.encode()
    )


def trailers(code: Status, message: str = "") -> bytes:
    block = literal(b"grpc-status", str(int(code)).encode())
    if message:
        block += literal(b"grpc-message", percent_encoded(message))
    return block


OK_TRAILERS = trailers(Status.OK)


def http_status(status: int) -> bytes:
    """A response header block for a request that is not gRPC at all (405, 415)."""
    return literal_indexed_name(8, str(status).encode())  # the static table's ":status"


_OPEN = struct.Struct(f">IBI{len(RESPONSE_HEADERS)}sIBI")  # HEADERS, then DATA's frame header
_OPEN_WORD = len(RESPONSE_HEADERS) << 8 | Frame.HEADERS
_CLOSE = struct.Struct(f">IBI{len(OK_TRAILERS)}s")  # HEADERS: the OK trailers
_CLOSE_WORD = len(OK_TRAILERS) << 8 | Frame.HEADERS


def answer_frames(stream: int, data: bytes) -> bytes:
    """An answer's three frames (headers, message, trailers), packed at once."""
    head = _OPEN.pack(_OPEN_WORD, Flag.END_HEADERS, stream, RESPONSE_HEADERS,
                      len(data) << 8 | Frame.DATA, 0, stream)  # fmt: skip
    tail = _CLOSE.pack(_CLOSE_WORD, Flag.END_HEADERS | Flag.END_STREAM, stream, OK_TRAILERS)
    return head + data + tail
