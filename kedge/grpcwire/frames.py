"""HTTP/2 frames (RFC 9113 section 4 and 6): the header every frame starts with, and the frames
a server sends."""

from __future__ import annotations

import struct
from enum import IntEnum

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
FRAME_HEADER = struct.Struct(">IBI")  # length (24 bits) and type (8), flags, stream id
HEADER_SIZE = FRAME_HEADER.size
DEFAULT_WINDOW = 65_535
DEFAULT_FRAME_SIZE = 16_384
MAX_WINDOW = 2**31 - 1


class Frame(IntEnum):
    DATA = 0
    HEADERS = 1
    PRIORITY = 2
    RST_STREAM = 3
    SETTINGS = 4
    PUSH_PROMISE = 5
    PING = 6
    GOAWAY = 7
    WINDOW_UPDATE = 8
    CONTINUATION = 9


class Flag:
    END_STREAM = 0x1
    ACK = 0x1
    END_HEADERS = 0x4
    PADDED = 0x8
    PRIORITY = 0x20


class Setting(IntEnum):
    HEADER_TABLE_SIZE = 1
    ENABLE_PUSH = 2
    MAX_CONCURRENT_STREAMS = 3
    INITIAL_WINDOW_SIZE = 4
    MAX_FRAME_SIZE = 5
    MAX_HEADER_LIST_SIZE = 6


class ErrorCode(IntEnum):
    NO_ERROR = 0
    PROTOCOL_ERROR = 1
    INTERNAL_ERROR = 2
    FLOW_CONTROL_ERROR = 3
    STREAM_CLOSED = 5
    FRAME_SIZE_ERROR = 6
    REFUSED_STREAM = 7
    CANCEL = 8
    COMPRESSION_ERROR = 9
    ENHANCE_YOUR_CALM = 11


class ConnectionError_(Exception):  # noqa: N801 - not the builtin ConnectionError
    """Ends the connection with a GOAWAY carrying `code`."""

    def __init__(self, code: ErrorCode, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


def frame(kind: Frame, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return FRAME_HEADER.pack(len(payload) << 8 | kind, flags, stream) + payload


def settings(values: dict[Setting, int]) -> bytes:
    payload = b"".join(struct.pack(">HI", key, value) for key, value in values.items())
    return frame(Frame.SETTINGS, 0, 0, payload)


def window_update(stream: int, increment: int) -> bytes:
    return frame(Frame.WINDOW_UPDATE, 0, stream, struct.pack(">I", increment))


def rst_stream(stream: int, code: ErrorCode) -> bytes:
    return frame(Frame.RST_STREAM, 0, stream, struct.pack(">I", code))


def goaway(last_stream: int, code: ErrorCode, reason: str = "") -> bytes:
    return frame(Frame.GOAWAY, 0, 0, struct.pack(">II", last_stream, code) + reason.encode())


def unpadded(payload: bytes) -> bytes:
    """A PADDED frame's content (its pad length byte and padding removed)."""
    if not payload or payload[0] >= len(payload):
        raise ConnectionError_(ErrorCode.PROTOCOL_ERROR, "padding longer than the frame")
    return payload[1 : len(payload) - payload[0]]


def settings_values(payload: bytes) -> list[tuple[int, int]]:
    """A SETTINGS frame's values, checked (RFC 9113 6.5.2)."""
    if len(payload) % 6:
        raise ConnectionError_(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS not in 6-byte units")
    values = list(struct.iter_unpack(">HI", payload))
    for key, value in values:
        if key == Setting.INITIAL_WINDOW_SIZE and value > MAX_WINDOW:
            raise ConnectionError_(ErrorCode.FLOW_CONTROL_ERROR, "window over 2^31-1")
        if key == Setting.MAX_FRAME_SIZE and not DEFAULT_FRAME_SIZE <= value < 1 << 24:
            raise ConnectionError_(ErrorCode.PROTOCOL_ERROR, "bad SETTINGS_MAX_FRAME_SIZE")
    return values


def preface_end(buffer: bytearray) -> int:
    """Where a client's preface (and the SETTINGS frame it must start with) ends; -1 while it
    is not all here. ConnectionError_ for anything that is not an HTTP/2 client."""
    if len(buffer) < len(PREFACE) + HEADER_SIZE:
        if not PREFACE.startswith(bytes(buffer[: len(PREFACE)])):
            raise ConnectionError_(ErrorCode.PROTOCOL_ERROR, "not an HTTP/2 client")
        return -1
    if not buffer.startswith(PREFACE) or buffer[len(PREFACE) + 3] != Frame.SETTINGS:
        raise ConnectionError_(ErrorCode.PROTOCOL_ERROR, "not an HTTP/2 client preface")
    return len(PREFACE)
