"""MQTT 3.1.1 frames against byte vectors, including frames split across reads."""

from __future__ import annotations

import pytest

from kedge import mqttwire
from kedge.mqttwire import Frame, FrameReader, ProtocolError


def test_publish_when_encoded_matches_spec_layout() -> None:
    assert mqttwire.publish("a/b", b"hi") == b"\x30\x07\x00\x03a/bhi"


def test_publish_when_body_over_127_bytes_uses_two_length_bytes() -> None:
    frame = mqttwire.publish("t", b"x" * 200)
    assert frame[:3] == b"\x30\xcb\x01"  # 203 = 0x4b | 0x80, then 1


def test_connect_when_credentials_given_sets_flags_and_payload() -> None:
    frame = mqttwire.connect("c1", 30, "u", "p")
    assert frame == (b"\x10\x14\x00\x04MQTT\x04\xc2\x00\x1e\x00\x02c1\x00\x01u\x00\x01p")


def test_connect_when_anonymous_sets_only_clean_session() -> None:
    assert mqttwire.connect("c", 60, None, None)[9] == 0x02


def test_connect_when_a_will_is_given_puts_it_between_client_id_and_credentials() -> None:
    frame = mqttwire.connect("c", 10, "u", "p", mqttwire.Will("w/t", b"", retain=True))
    # flags: user, password, will retain, will, clean session; payload: id, will topic,
    # will message (empty), user, password (MQTT 3.1.1 section 3.1.3)
    assert (
        frame
        == b"\x10\x1a\x00\x04MQTT\x04\xe6\x00\x0a\x00\x01c\x00\x03w/t\x00\x00\x00\x01u\x00\x01p"
    )


def test_publish_when_retained_sets_the_retain_bit() -> None:
    assert mqttwire.publish("a", b"", retain=True) == b"\x31\x03\x00\x01a"


def test_subscribe_when_encoded_has_packet_id_and_qos0_filters() -> None:
    assert mqttwire.subscribe(7, ["a/#"]) == b"\x82\x08\x00\x07\x00\x03a/#\x00"


def test_reader_when_frames_split_across_reads_yields_each_once() -> None:
    data = mqttwire.publish("t/1", b"one") + b"\xd0\x00" + mqttwire.publish("t/2", b"x" * 300)
    reader = FrameReader()
    frames = []
    for i in range(len(data)):
        frames += reader.feed(data[i : i + 1])
    assert [f.type for f in frames] == [mqttwire.PUBLISH, mqttwire.PINGRESP, mqttwire.PUBLISH]
    assert mqttwire.parse_publish(frames[0]) == ("t/1", b"one")
    assert mqttwire.parse_publish(frames[2]) == ("t/2", b"x" * 300)


def test_reader_when_burst_in_one_read_yields_all() -> None:
    data = b"".join(mqttwire.publish(f"t/{i}", b"v") for i in range(100))
    assert len(FrameReader().feed(data)) == 100


def test_parse_publish_when_qos1_skips_packet_id() -> None:
    assert mqttwire.parse_publish(Frame(3, 0x2, b"\x00\x01t\x00\x09body")) == ("t", b"body")


@pytest.mark.parametrize(
    ("data", "fragment"),
    [(b"\x30\xff\xff\xff\xff\x01", "longer than 4 bytes"), (b"\x90\xff\xff\xff\x7f", "exceeds")],
)
def test_reader_when_length_invalid_raises(data: bytes, fragment: str) -> None:
    with pytest.raises(ProtocolError, match=fragment):
        FrameReader().feed(data)


@pytest.mark.parametrize("body", [b"\x00", b"\x00\x09ab"])
def test_parse_publish_when_truncated_raises(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        mqttwire.parse_publish(Frame(3, 0, body))


@pytest.mark.parametrize("size", [0, 127, 128, 16_383, 16_384, 70_000])
def test_publish_when_read_back_round_trips_every_length_width(size: int) -> None:
    [frame] = FrameReader().feed(mqttwire.publish("t", b"x" * size))
    assert mqttwire.parse_publish(frame) == ("t", b"x" * size)


def test_an_oversized_publish_is_skipped_unbuffered_and_what_follows_is_read() -> None:
    big = mqttwire.publish("$hw/x/twin/update", b"z" * 5000)
    after = mqttwire.publish("t/after", b"ok")
    data = mqttwire.publish("t/before", b"1") + big + after
    for step in (1, 7, 100, len(data)):  # split every which way across reads
        reader = FrameReader(max_frame=1000)
        frames = []
        for i in range(0, len(data), step):
            frames += reader.feed(data[i : i + step])
            assert len(reader._buffer) < 1100  # never the whole oversized frame
        assert [f.type for f in frames] == [mqttwire.PUBLISH, mqttwire.OVERSIZED, mqttwire.PUBLISH]
        assert frames[1].body == b"$hw/x/twin/update" and frames[1].size == 5000 + 19
        assert mqttwire.parse_publish(frames[2]) == ("t/after", b"ok")


def test_an_oversized_frame_that_is_no_publish_is_a_protocol_error() -> None:
    reader = FrameReader(max_frame=10)
    with pytest.raises(ProtocolError):
        reader.feed(mqttwire.frame(mqttwire.SUBACK, 0, b"x" * 20))


def test_oversized_carries_its_size_and_is_empty() -> None:
    payload = mqttwire.Oversized(17_000_000)
    assert payload == b"" and payload.size == 17_000_000
