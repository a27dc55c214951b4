"""SPDY/3.1 framing, the server's side of what Kubernetes' port-forward speaks (kubectl tunnels it
inside a websocket, subprotocol `SPDY/3.1+portforward.k8s.io`). Frames and header blocks as the
SPDY/3 draft defines them: control frames (1 bit set, version 3, type, flags, 24-bit length),
data frames (stream id, flags, length), name/value header blocks compressed with zlib and the
draft's dictionary, one compression context per direction. Malformed input raises SpdyError."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = (
    1, 2, 3, 4, 6, 7, 8, 9)  # fmt: skip
FIN = 0x01
MAX_FRAME = 1 << 20  # bytes of one frame's payload taken here (SPDY allows 16 MiB)
MAX_HEADERS = 64 * 1024  # bytes of a header block once inflated
CANCEL, INTERNAL_ERROR = 5, 6  # RST_STREAM status codes

# the SPDY/3 header compression dictionary (draft 3, 2.6.10.1): 65 length-prefixed words, then text
_WORDS = (
    "options|head|post|put|delete|trace|accept|accept-charset|accept-encoding|accept-language|"
    "accept-ranges|age|allow|authorization|cache-control|connection|content-base|"
    "content-encoding|content-language|content-length|content-location|content-md5|"
    "content-range|content-type|date|etag|expect|expires|from|host|if-match|if-modified-since|"
    "if-none-match|if-range|if-unmodified-since|last-modified|location|max-forwards|pragma|"
    "proxy-authenticate|proxy-authorization|range|referer|retry-after|server|te|trailer|"
    "transfer-encoding|upgrade|user-agent|vary|via|warning|www-authenticate|method|get|status|"
    "200 OK|version|HTTP/1.1|url|public|set-cookie|keep-alive|origin"
)
_TEXT = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 "
    "Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 "
    "Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, "
    "Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,application/xml,"
    "application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdch"
    "charset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _WORDS.split("|")) + (
    _TEXT.encode())  # fmt: skip


class SpdyError(ValueError):
    """Not SPDY/3 as this side reads it; the connection cannot go on."""


@dataclass
class Frame:
    kind: int  # a control frame type, or 0 for data
    flags: int
    stream: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    data: bytes = b""
    value: int = 0  # PING's id, RST_STREAM's and GOAWAY's status

    @property
    def fin(self) -> bool:
        return bool(self.flags & FIN)


class FrameReader:
    """Frames from a byte stream that arrives in pieces (websocket messages)."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames = []
        while len(self._buffer) >= 8:
            length = int.from_bytes(self._buffer[5:8], "big")
            if length > MAX_FRAME:
                raise SpdyError(f"a frame of {length} bytes is larger than {MAX_FRAME}")
            if len(self._buffer) < 8 + length:
                break
            head, payload = bytes(self._buffer[:8]), bytes(self._buffer[8 : 8 + length])
            del self._buffer[: 8 + length]
            frames.append(self._frame(head, payload))
        return frames

    def _frame(self, head: bytes, payload: bytes) -> Frame:
        first, flags = int.from_bytes(head[:4], "big"), head[4]
        if not first & 0x80000000:
            return Frame(0, flags, first & 0x7FFFFFFF, data=payload)
        version, kind = (first >> 16) & 0x7FFF, first & 0xFFFF
        if version != VERSION:
            raise SpdyError(f"SPDY version {version}, not 3")
        need = {SYN_STREAM: 10, SYN_REPLY: 4, RST_STREAM: 8, PING: 4, GOAWAY: 8, HEADERS: 4,
                WINDOW_UPDATE: 8, SETTINGS: 4}.get(kind, 0)  # fmt: skip
        if len(payload) < need:
            raise SpdyError(f"control frame {kind}: {len(payload)} bytes, at least {need} needed")
        word = int.from_bytes(payload[:4], "big") if need else 0
        if kind == SYN_STREAM:
            return Frame(kind, flags, word & 0x7FFFFFFF, self._headers(payload[10:]))
        if kind in (SYN_REPLY, HEADERS):
            return Frame(kind, flags, word & 0x7FFFFFFF, self._headers(payload[4:]))
        if kind in (RST_STREAM, GOAWAY):
            return Frame(kind, flags, word & 0x7FFFFFFF, value=int.from_bytes(payload[4:8], "big"))
        return Frame(kind, flags, word & 0x7FFFFFFF if kind == WINDOW_UPDATE else 0, value=word)

    def _headers(self, block: bytes) -> dict[str, str]:
        try:
            raw = self._inflate.decompress(block, MAX_HEADERS)
        except zlib.error as exc:
            raise SpdyError(f"header block does not inflate: {exc}") from exc
        if self._inflate.unconsumed_tail:
            raise SpdyError(f"header block larger than {MAX_HEADERS} bytes")
        return _pairs(raw)


def _pairs(raw: bytes) -> dict[str, str]:
    def take(pos: int) -> tuple[str, int]:
        if pos + 4 > len(raw):
            raise SpdyError("header block truncated")
        size = int.from_bytes(raw[pos : pos + 4], "big")
        if pos + 4 + size > len(raw):
            raise SpdyError("header block truncated")
        return raw[pos + 4 : pos + 4 + size].decode("utf-8", "replace"), pos + 4 + size

    if len(raw) < 4:
        raise SpdyError("header block without a count")
    headers, pos = {}, 4
    for _ in range(int.from_bytes(raw[:4], "big")):
        name, pos = take(pos)
        value, pos = take(pos)
        headers[name.lower()] = value
    return headers


class FrameWriter:
    """Frames to send; header blocks share one compression context, as the reader expects."""

    def __init__(self) -> None:
        self._deflate = zlib.compressobj(zlib.Z_BEST_COMPRESSION, zdict=DICTIONARY)

    @staticmethod
    def _control(kind: int, flags: int, payload: bytes) -> bytes:
        return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(payload)) + payload

    def _block(self, headers: dict[str, str]) -> bytes:
        raw = struct.pack(">I", len(headers)) + b"".join(
            struct.pack(">I", len(k)) + k.encode() + struct.pack(">I", len(v.encode())) + v.encode()
            for k, v in headers.items())  # fmt: skip
        return self._deflate.compress(raw) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    def syn_reply(self, stream: int, headers: dict[str, str], fin: bool = False) -> bytes:
        payload = struct.pack(">I", stream) + self._block(headers)
        return self._control(SYN_REPLY, FIN if fin else 0, payload)

    def syn_stream(self, stream: int, headers: dict[str, str], fin: bool = False) -> bytes:
        """A stream from this side (tests play the client with it)."""
        payload = struct.pack(">IIH", stream, 0, 0) + self._block(headers)
        return self._control(SYN_STREAM, FIN if fin else 0, payload)

    @staticmethod
    def data(stream: int, payload: bytes, fin: bool = False) -> bytes:
        return struct.pack(">II", stream, ((FIN if fin else 0) << 24) | len(payload)) + payload

    def rst(self, stream: int, status: int) -> bytes:
        return self._control(RST_STREAM, 0, struct.pack(">II", stream, status))

    def ping(self, ping_id: int) -> bytes:
        return self._control(PING, 0, struct.pack(">I", ping_id))

    def goaway(self, last_stream: int) -> bytes:
        return self._control(GOAWAY, 0, struct.pack(">II", last_stream, 0))
