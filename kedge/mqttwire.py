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


OVERSIZED = 16  # not an MQTT type: a PUBLISH over the reader's limit, skipped unbuffered


class Frame(NamedTuple):
    type: int
    flags: int
    body: bytes  # for OVERSIZED: the topic only
    size: int = 0  # for OVERSIZED: the frame's length


class Oversized(bytes):
    """The payload of a PUBLISH too large to read: empty, with the size it had, so a receiver
    can answer it instead of losing its connection."""

    size: int

    def __new__(cls, size: int) -> Oversized:
        made = super().__new__(cls, b"")
        made.size = size
        return made


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


def oversized_payload(item: Frame) -> Oversized:
    """The payload of an OVERSIZED frame: its size without the topic (and packet id)."""
    return Oversized(item.size - 2 - len(item.body) - (2 if item.flags & 0x06 else 0))


class FrameReader:
    """Accumulates bytes and yields complete frames. A PUBLISH longer than `max_frame` is
    not buffered: its topic is read, the rest discarded as it arrives (an OVERSIZED frame)."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._buffer = bytearray()
        self.max_frame = max_frame
        self._skip = 0  # bytes of an oversized frame still to discard

    def _discard(self) -> None:
        drop = min(self._skip, len(self._buffer))
        del self._buffer[:drop]
        self._skip -= drop

    def _oversized(self, head: int, index: int, length: int) -> Frame | None:
        """The OVERSIZED frame once its topic is in, then skipping the rest; None: wait."""
        if head >> 4 != PUBLISH:
            raise ProtocolError(f"frame of {length} bytes exceeds {self.max_frame}")
        buffer = self._buffer
        if len(buffer) - index < 2:
            return None
        (size,) = struct.unpack_from("!H", buffer, index)
        if len(buffer) - index < 2 + size:
            return None
        topic = bytes(buffer[index + 2 : index + 2 + size])
        self._skip = index + length
        self._discard()
        return Frame(OVERSIZED, head & 0x0F, topic, length)

    def feed(self, data: bytes) -> list[Frame]:
        buffer = self._buffer
        buffer += data
        if self._skip:
            self._discard()
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
            if length > self.max_frame:
                del buffer[:pos]
                oversized = self._oversized(buffer[0], index - pos, length)
                if oversized is not None:
                    frames.append(oversized)
                    return frames + self.feed(b"") if buffer and not self._skip else frames
                return frames
            if end - index < length:
                break
            head = buffer[pos]
            frames.append(Frame(head >> 4, head & 0x0F, bytes(buffer[index : index + length])))
            pos = index + length
        del buffer[:pos]
        return frames
