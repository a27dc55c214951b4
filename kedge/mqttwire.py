"""MQTT 3.1.1 frames, the few a QoS 0 client needs. Pure: bytes in, bytes and frames out.

    +--------+----------------------+-------------------------------+
    | byte 0 | remaining length     | variable header + payload     |
    | type<<4| 1-4 bytes, 7 bits    |                               |
    | |flags | each, LSB first      |                               |
    +--------+----------------------+-------------------------------+
    PUBLISH (3): topic length (2 B, big endian), topic (UTF-8), [packet id if QoS > 0], payload

`FrameReader.feed()` returns every complete frame in the buffer and keeps the rest, so one read
of the socket yields a whole burst.
"""

from __future__ import annotations

import struct
from functools import lru_cache
from typing import NamedTuple

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 12, 13, 14
PINGREQ_FRAME = b"\xc0\x00"
DISCONNECT_FRAME = b"\xe0\x00"
MAX_FRAME = 16 * 1024 * 1024
CONNACK_REASONS = {
    1: "unacceptable protocol version",
    2: "identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized",
}


class ProtocolError(Exception):
    """The peer sent something that is not MQTT 3.1.1."""


class Frame(NamedTuple):
    type: int
    flags: int
    body: bytes


def _length(n: int) -> bytes:
    if n < 0x80:  # almost every frame edgecore writes
        return bytes((n,))
    if n < 0x4000:
        return bytes((n & 0x7F | 0x80, n >> 7))
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("!H", len(raw)) + raw


def frame(type_: int, flags: int, body: bytes) -> bytes:
    return bytes([type_ << 4 | flags]) + _length(len(body)) + body


class Will(NamedTuple):
    """What the broker publishes (QoS 0) when the client goes without a DISCONNECT."""

    topic: str
    payload: bytes
    retain: bool = False


def connect(
    client_id: str,
    keepalive: int,
    username: str | None,
    password: str | None,
    will: Will | None = None,
) -> bytes:
    flags = 0x02  # clean session
    payload = _string(client_id)
    if will is not None:
        flags |= 0x04 | (0x20 if will.retain else 0)  # will flag, QoS 0, retain
        payload += _string(will.topic) + struct.pack("!H", len(will.payload)) + will.payload
    if username is not None:
        flags |= 0x80
        payload += _string(username)
        if password is not None:
            flags |= 0x40
            payload += _string(password)
    header = _string("MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive)
    return frame(CONNECT, 0, header + payload)


def subscribe(packet_id: int, topics: list[str]) -> bytes:
    body = struct.pack("!H", packet_id) + b"".join(_string(t) + b"\x00" for t in topics)
    return frame(SUBSCRIBE, 0x2, body)


@lru_cache(maxsize=16384)
def _topic_field(topic: str) -> bytes:
    raw = topic.encode()
    return struct.pack("!H", len(raw)) + raw


def publish(topic: str, payload: bytes, retain: bool = False) -> bytes:
    """A QoS 0 PUBLISH (retained: the broker keeps it for later subscribers; an empty retained
    payload removes what it kept)."""
    field = _topic_field(topic)
    head = b"\x31" if retain else b"\x30"
    return b"".join((head, _length(len(field) + len(payload)), field, payload))


def parse_publish(item: Frame) -> tuple[str, bytes]:
    """(topic, payload) of a PUBLISH frame; skips the packet id of QoS 1/2 messages."""
    body = item.body
    if len(body) < 2:
        raise ProtocolError("PUBLISH too short")
    (size,) = struct.unpack_from("!H", body)
    start = 2 + size + (2 if item.flags & 0x06 else 0)
    if start > len(body):
        raise ProtocolError("PUBLISH topic runs past the frame")
    return body[2 : 2 + size].decode(errors="replace"), body[start:]


class FrameReader:
    """Accumulates bytes and yields complete frames."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        buffer = self._buffer
        buffer += data
        frames: list[Frame] = []
        pos, end = 0, len(buffer)
        while end - pos >= 2:
            length, shift, index, complete = 0, 0, pos + 1, False
            while index < end:
                byte = buffer[index]
                index += 1
                length |= (byte & 0x7F) << shift
                if not byte & 0x80:
                    complete = True
                    break
                shift += 7
                if shift > 21:
                    raise ProtocolError("remaining length longer than 4 bytes")
            if not complete:
                break
            if length > MAX_FRAME:
                raise ProtocolError(f"frame of {length} bytes exceeds {MAX_FRAME}")
            if end - index < length:
                break
            head = buffer[pos]
            frames.append(Frame(head >> 4, head & 0x0F, bytes(buffer[index : index + length])))
            pos = index + length
        del buffer[:pos]
        return frames
