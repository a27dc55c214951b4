"""Channel frames: round trip, and every malformed frame refused with a reason."""

from __future__ import annotations

import pytest

from kedge.channel.message import FrameError, Message, decode


def test_round_trip_keeps_every_field() -> None:
    message = Message("edge/n1", "twin", "node/n1/device/default/d", "update", {"a": [1]},
                      resource_version="42", sync=True)  # fmt: skip
    assert decode(message.encode()) == message
    reply = message.reply("cloud", "ack")
    assert reply.parent_id == message.msg_id and reply.resource == message.resource


ROUTE = b'"route": {"source": "s", "group": "g", "operation": "ack"}'


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1]", "not a JSON object"),
        (b'{"header": {}}', "header and route"),
        (b'{"header": {"msg_id": "x"}, ' + ROUTE.replace(b"ack", b"fly") + b"}", "operation"),
        (b'{"header": {"msg_id": "", "timestamp": 1}, ' + ROUTE + b"}", "msg_id"),
        (b'{"header": {"msg_id": "x", "timestamp": "now"}, ' + ROUTE + b"}", "timestamp"),
        (b" " * (4 * 1024 * 1024 + 1), "larger"),
    ],
)
def test_malformed_frames_are_refused(frame: bytes, reason: str) -> None:
    with pytest.raises(FrameError, match=reason):
        decode(frame)
