"""Stream sessions on the cloud side: a node's frames count only for its own sessions, bad
frames change nothing, a node that goes away ends its sessions, input is cut into frames a
channel message holds. The hub records instead of sending (the channel is tested in
integration)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from cloudcore.hub import CloudHub
from cloudcore.sessions import CHUNK, Sessions
from kedge.channel import routes
from kedge.channel.message import Message


class Recorder:
    def __init__(self) -> None:
        self.on_gone: list[Any] = []
        self.sent: list[tuple[str, Message]] = []

    async def send(self, node: str, message: Message) -> bool:
        self.sent.append((node, message))
        return node != "offline"


def _sessions() -> tuple[Sessions, Recorder]:
    hub = Recorder()
    return Sessions(cast(CloudHub, hub)), hub


async def _frames(session: Any) -> list[tuple[int, bytes]]:
    return [frame async for frame in session.output()]


async def test_frames_count_only_from_the_node_that_holds_the_session() -> None:
    sessions, _ = _sessions()
    session = await sessions.open("n1", "exec", "default", "p", {"command": ["true"]})
    assert session is not None
    frame = routes.stream_data("edge/n2", session.id, 1, b"forged")
    await sessions.on_data(frame, "n2")
    await sessions.on_close(routes.stream_close("edge/n2", session.id, {"status": "Success"}), "n2")
    await sessions.on_data(routes.stream_data("edge/n1", session.id, 1, b"real"), "n1")
    bad = Message(
        "edge/n1", "stream", f"stream/{session.id}", "update", {"channel": 1, "data": "*"}
    )
    await sessions.on_data(bad, "n1")  # not base64: dropped
    await sessions.on_close(routes.stream_close("edge/n1", session.id, {"status": "Success"}), "n1")
    assert await _frames(session) == [(1, b"real")] and session.ended == {"status": "Success"}


async def test_a_node_that_goes_away_ends_its_sessions_and_offline_nodes_get_none() -> None:
    sessions, _ = _sessions()
    assert await sessions.open("offline", "logs", "default", "p", {}) is None
    session = await sessions.open("n1", "logs", "default", "p", {})
    assert session is not None
    sessions.gone("n1")
    assert await asyncio.wait_for(_frames(session), 1) == []
    assert session.ended is not None and "disconnected" in session.ended["message"]


async def test_input_is_cut_into_channel_sized_frames_and_close_tells_the_edge() -> None:
    sessions, hub = _sessions()
    session = await sessions.open("n1", "exec", "default", "p", {"command": ["cat"]})
    assert session is not None
    await sessions.send(session, 0, b"x" * (CHUNK * 2 + 1))
    sizes = [len(routes.stream_frame(m)[2]) for _, m in hub.sent if m.operation == "update"]
    assert sizes == [CHUNK, CHUNK, 1]
    await sessions.close(session)
    assert hub.sent[-1][1].operation == "delete" and session.ended is not None
