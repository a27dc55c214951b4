"""XBee API mode 2 frames (Digi 90000976): start byte, length, frame, checksum, 0x7D escaping.

Pure byte work shared by the radio emulation and its tests.
"""

from __future__ import annotations

START = 0x7E
ESCAPE = 0x7D
_RESERVED = frozenset({START, ESCAPE, 0x11, 0x13})


def checksum(frame: bytes) -> int:
    return 0xFF - (sum(frame) & 0xFF)


def _escape(data: bytes) -> bytes:
    out = bytearray()
    for byte in data:
        if byte in _RESERVED:
            out += bytes([ESCAPE, byte ^ 0x20])
        else:
            out.append(byte)
    return bytes(out)


def encode(frame: bytes) -> bytes:
    """One API frame on the wire (escaped: everything after the start byte)."""
    body = len(frame).to_bytes(2, "big") + frame + bytes([checksum(frame)])
    return bytes([START]) + _escape(body)


class FrameDecoder:
    """Splits a byte stream into API frames; bytes before a start byte and frames with a bad
    checksum are dropped, as the radio itself does."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.bad_frames = 0

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        frames: list[bytes] = []
        while True:
            start = self._buffer.find(START)
            if start < 0:
                self._buffer.clear()
                return frames
            del self._buffer[:start]
            parsed = self._unescape_one()
            if parsed is None:
                return frames
            frame, consumed, valid = parsed
            del self._buffer[:consumed]
            if valid:
                frames.append(frame)
            else:
                self.bad_frames += 1

    def _unescape_one(self) -> tuple[bytes, int, bool] | None:
        """(frame, bytes consumed, checksum ok) for the frame at the buffer's start, or None
        while it is incomplete."""
        out = bytearray()
        index, wanted = 1, None
        while wanted is None or len(out) < wanted:
            if index >= len(self._buffer):
                return None
            byte = self._buffer[index]
            if byte == START:  # a new frame starts inside this one: drop the broken one
                return b"", index, False
            if byte == ESCAPE:
                if index + 1 >= len(self._buffer):
                    return None
                index += 1
                byte = self._buffer[index] ^ 0x20
            out.append(byte)
            index += 1
            if wanted is None and len(out) == 2:
                wanted = 2 + int.from_bytes(out[:2], "big") + 1
        frame = bytes(out[2:-1])
        return frame, index, checksum(frame) == out[-1]
