"""XBee API mode 2 framing: byte vectors from Digi's documentation and zigpy-xbee's first frame."""

from __future__ import annotations

from simulators import xbee

# zigpy-xbee's first frame on connect: AT "AP" = 2 (frame id 1)
AP2 = bytes.fromhex("7e0005080141500263")


def test_encode_matches_the_radio_library() -> None:
    assert xbee.encode(bytes.fromhex("0801415002")) == AP2


def test_reserved_bytes_are_escaped_and_decoded_back() -> None:
    frame = bytes([0x91, 0x7E, 0x7D, 0x11, 0x13, 0x00])
    wire = xbee.encode(frame)
    assert b"\x7e" not in wire[1:] and b"\x11" not in wire and b"\x13" not in wire
    assert xbee.FrameDecoder().feed(wire) == [frame]


def test_stream_split_anywhere_gives_the_same_frames() -> None:
    wire = AP2 + xbee.encode(b"\x8a\x06") + AP2
    for cut in range(len(wire)):
        decoder = xbee.FrameDecoder()
        assert decoder.feed(wire[:cut]) + decoder.feed(wire[cut:]) == [
            bytes.fromhex("0801415002"),
            b"\x8a\x06",
            bytes.fromhex("0801415002"),
        ]


def test_noise_and_bad_checksums_are_dropped_and_counted() -> None:
    decoder = xbee.FrameDecoder()
    bad = AP2[:-1] + b"\x00"
    truncated = AP2[:5]  # a new start byte arrives before this frame is complete
    assert decoder.feed(b"\x00\xff+++" + bad + truncated + AP2) == [bytes.fromhex("0801415002")]
    assert decoder.bad_frames == 2
