"""HPACK decoding against RFC 7541's own examples (Appendix C) and against the hpack library's
encoder, an independent implementation."""

from __future__ import annotations

import random

import pytest
from hpack import Encoder

from kedge.grpcwire.headers import HeaderDecoder, HpackError, literal, literal_indexed_name

GET = [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"),
       (b":authority", b"www.example.com")]  # fmt: skip
REQUESTS = [  # RFC 7541 C.3 (plain) and C.4 (Huffman): three requests on one connection
    GET,
    [*GET, (b"cache-control", b"no-cache")],
    [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/index.html"),
     (b":authority", b"www.example.com"), (b"custom-key", b"custom-value")],
]  # fmt: skip
C3 = ["828684410f7777772e6578616d706c652e636f6d", "828684be58086e6f2d6361636865",
      "828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565"]  # fmt: skip
C4 = ["828684418cf1e3c2e5f23a6ba0ab90f4ff", "828684be5886a8eb10649cbf",
      "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf"]  # fmt: skip


@pytest.mark.parametrize("blocks", [C3, C4], ids=["C.3 plain", "C.4 Huffman"])
def test_rfc7541_request_examples_decode(blocks: list[str]) -> None:
    decoder = HeaderDecoder()
    for block, expected in zip(blocks, REQUESTS, strict=True):
        assert decoder.decode(bytes.fromhex(block)) == expected
    assert list(decoder.dynamic) == [(b"custom-key", b"custom-value"),
                                     (b"cache-control", b"no-cache"),
                                     (b":authority", b"www.example.com")]  # fmt: skip
    assert decoder.size == 164  # as the RFC's table after the third request


def test_rfc7541_response_examples_evict_the_oldest_entries() -> None:
    decoder = HeaderDecoder(max_table=256)  # C.5: a 256-byte table
    first = bytes.fromhex(
        "4803333032580770726976617465611d4d6f6e2c203231204f637420323031332032303a31333a32"
        "3120474d546e1768747470733a2f2f7777772e6578616d706c652e636f6d"
    )
    assert decoder.decode(first) == [
        (b":status", b"302"), (b"cache-control", b"private"),
        (b"date", b"Mon, 21 Oct 2013 20:13:21 GMT"), (b"location", b"https://www.example.com"),
    ]  # fmt: skip
    assert decoder.size == 222
    second = decoder.decode(bytes.fromhex("4803333037c1c0bf"))
    assert second[0] == (b":status", b"307") and second[1] == (b"cache-control", b"private")
    names = [name for name, _ in decoder.dynamic]
    assert names == [b":status", b"location", b"date", b"cache-control"]  # ":status 302" out
    assert decoder.dynamic[0] == (b":status", b"307") and decoder.size == 222


def test_blocks_from_an_independent_encoder_decode_to_what_was_encoded() -> None:
    rng = random.Random(7)
    encoder, decoder = Encoder(), HeaderDecoder()
    names = [b"grpc-timeout", b"x-trace", b"user-agent", b"content-type", b"te"]
    for _ in range(500):
        headers = [(b":method", b"POST"), (b":path", b"/v1beta1.DeviceManagerService/X")]
        headers += [(rng.choice(names), b"%d" % rng.randrange(10**rng.randrange(1, 9)))
                    for _ in range(rng.randrange(1, 6))]  # fmt: skip
        block = encoder.encode(headers, huffman=rng.random() < 0.5)
        assert decoder.decode(block) == headers


def test_a_remembered_block_is_decoded_again_once_the_table_changed() -> None:
    encoder, decoder = Encoder(), HeaderDecoder()
    first = [(b":path", b"/a"), (b"x-id", b"1")]
    decoder.fields(encoder.encode(first))  # both now in the dynamic table
    again = encoder.encode(first)  # indexes only: remembered
    assert again == bytes([0xBF, 0xBE]) and decoder.fields(again) == decoder.fields(again)
    assert decoder.fields(again) == ({b":path": b"/a", b"x-id": b"1"}, 2 * 32 + 7 + 5)
    decoder.fields(encoder.encode([(b"x-id", b"2")]))  # a new entry: every index moves on
    assert decoder.fields(again) == ({b"x-id": b"2"}, 2 * (32 + 5))  # 62, 63: x-id 2, x-id 1
    repeated = decoder.fields(encoder.encode([(b"x-id", b"3"), (b"x-id", b"4")]))
    assert repeated == ({b"x-id": b"4"}, 2 * (32 + 4 + 1))  # the last of a name; size counts all


def test_a_size_update_shrinks_the_table_and_one_over_the_limit_is_refused() -> None:
    decoder = HeaderDecoder()
    decoder.decode(bytes.fromhex(C3[0]))
    assert decoder.decode(b"\x20" + bytes.fromhex("82")) == [(b":method", b"GET")]
    assert not decoder.dynamic and decoder.limit == 0
    with pytest.raises(HpackError, match="over the 4096"):
        decoder.decode(b"\x3f\xe2\x1f")  # size update to 4097


@pytest.mark.parametrize(
    ("block", "why"),
    [
        (b"\xbe", "in neither table"),  # index 62, the table empty
        (b"\x80", "in neither table"),  # index 0
        (b"\x00\x05ab", "runs past"),
        (b"\x7f", "runs past"),  # an integer cut short
        (b"\x82\x20", "after a header field"),
        (b"\x00\x81\xff\x01a", "Huffman"),  # EOS inside a string
    ],
)
def test_malformed_blocks_are_refused_with_the_reason(block: bytes, why: str) -> None:
    with pytest.raises(HpackError, match=why):
        HeaderDecoder().decode(block)


def test_our_response_encodings_decode_with_an_independent_decoder() -> None:
    from hpack import Decoder

    block = b"\x88" + literal_indexed_name(31, b"application/grpc") + literal(b"grpc-status",
                                                                              b"0")  # fmt: skip
    assert Decoder().decode(block, raw=True) == [
        (b":status", b"200"), (b"content-type", b"application/grpc"), (b"grpc-status", b"0")
    ]  # fmt: skip
    long = b"x" * 300  # lengths past the 7-bit prefix
    assert Decoder().decode(literal(b"grpc-message", long), raw=True) == [(b"grpc-message", long)]
