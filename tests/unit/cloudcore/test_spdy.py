"""SPDY/3 framing as kubectl's port-forward client (moby/spdystream) speaks it: the header
dictionary byte for byte, frames split across websocket messages, and malformed input."""

from __future__ import annotations

import hashlib
import struct
import zlib

import pytest

from cloudcore.spdy import (
    DICTIONARY,
    PING,
    SYN_STREAM,
    FrameReader,
    FrameWriter,
    SpdyError,
)


def test_the_header_dictionary_is_the_drafts() -> None:
    """The digest of the 1,423-byte dictionary in SPDY/3 draft section 2.6.10.1 (and in
    moby/spdystream's spdy/dictionary.go)."""
    assert len(DICTIONARY) == 1423
    assert hashlib.sha256(DICTIONARY).hexdigest() == (
        "51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02"
    )


def test_frames_split_anywhere_are_read_whole() -> None:
    client = FrameWriter()
    wire = (client.syn_stream(1, {"streamtype": "error", "port": "80", "requestid": "0"})
            + client.syn_stream(3, {"streamtype": "data", "port": "80", "requestid": "0"})
            + client.data(3, b"GET / HTTP/1.0\r\n\r\n", fin=True) + client.ping(1))  # fmt: skip
    reader, frames = FrameReader(), []
    for start in range(0, len(wire), 3):  # as kubectl writes: a few bytes per message
        frames += reader.feed(wire[start : start + 3])
    assert [f.kind for f in frames] == [SYN_STREAM, SYN_STREAM, 0, PING]
    assert frames[1].headers == {"streamtype": "data", "port": "80", "requestid": "0"}
    assert frames[2].data == b"GET / HTTP/1.0\r\n\r\n" and frames[2].fin and frames[2].stream == 3


def test_a_reply_header_block_inflates_with_the_dictionary() -> None:
    reply = FrameWriter().syn_reply(5, {"a": "b"})
    assert struct.unpack(">HHI", reply[:8])[:2] == (0x8003, 2)
    raw = zlib.decompressobj(zdict=DICTIONARY).decompress(reply[12:])
    assert raw == struct.pack(">I", 1) + b"\x00\x00\x00\x01a\x00\x00\x00\x01b"


@pytest.mark.parametrize("wire", [
    struct.pack(">HHI", 0x8002, SYN_STREAM, 10) + bytes(10),  # SPDY/2
    struct.pack(">HHI", 0x8003, SYN_STREAM, 4) + bytes(4),  # too short
    struct.pack(">HHI", 0x8003, SYN_STREAM, 12) + bytes(10) + b"xx",  # not zlib
    struct.pack(">II", 1, 1 << 21),  # a data frame larger than taken
])  # fmt: skip
def test_malformed_frames_raise(wire: bytes) -> None:
    with pytest.raises(SpdyError):
        FrameReader().feed(wire)
