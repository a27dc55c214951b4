"""CloudHub and EdgeHub over a real wss connection with mutual TLS."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import websockets

from cloudcore.hub import CloudHub, server_context
from cloudcore.pki import ensure_certificates, issue_client_certificate
from edgecore.hub import EdgeHub, client_context
from harness.support import free_port, wait_until
from kedge.channel.message import Message, decode


@dataclass
class Channel:
    cloud: CloudHub
    edge: EdgeHub
    to_cloud: asyncio.Queue[tuple[str, Message]]
    to_edge: asyncio.Queue[Message]
    pki: Path


def _node_files(pki: Path, directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = issue_client_certificate(pki, f"system:node:{name}")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "node.crt").write_bytes(cert)
    (directory / "node.key").write_bytes(key)
    return directory / "node.crt", directory / "node.key"


@pytest.fixture
async def channel(tmp_path: Path) -> AsyncIterator[Channel]:
    pki = tmp_path / "pki"
    ca, crt, key = ensure_certificates(pki)
    to_cloud: asyncio.Queue[tuple[str, Message]] = asyncio.Queue()
    to_edge: asyncio.Queue[Message] = asyncio.Queue()

    async def on_cloud(node: str, message: Message) -> None:
        to_cloud.put_nowait((node, message))

    async def on_edge(message: Message) -> None:
        to_edge.put_nowait(message)

    cloud = CloudHub(server_context(ca, crt, key))
    await cloud.start("127.0.0.1", free_port(), on_cloud)
    node_crt, node_key = _node_files(pki, tmp_path / "edge", "n1")
    edge = EdgeHub([f"wss://127.0.0.1:{cloud.port}"], "n1", client_context(ca, node_crt, node_key))

    async def connected() -> None:
        pass

    task = asyncio.create_task(edge.run(on_edge, connected))
    await asyncio.wait_for(edge.connected.wait(), 10)
    await wait_until(lambda: "n1" in cloud.sessions, what="session")
    yield Channel(cloud, edge, to_cloud, to_edge, pki)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await cloud.stop()


async def test_messages_flow_both_ways_with_the_node_identity(channel: Channel) -> None:
    assert await channel.edge.send(
        Message("edge/n1", "twin", "device/default/d", "update", {"t": "1"})
    )
    node, message = await asyncio.wait_for(channel.to_cloud.get(), 5)
    assert node == "n1" and message.content == {"t": "1"}
    assert await channel.cloud.send("n1", message.reply("cloud", "ack"))
    ack = await asyncio.wait_for(channel.to_edge.get(), 5)
    assert ack.operation == "ack" and ack.parent_id == message.msg_id
    assert not await channel.cloud.send("n9", message)  # not connected: the caller keeps it


async def test_bad_frames_get_an_error_and_the_session_stays(
    channel: Channel, tmp_path: Path
) -> None:
    ca = channel.pki / "ca.crt"
    crt, key = _node_files(channel.pki, tmp_path / "raw", "raw")
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(str(crt), str(key))
    async with websockets.connect(f"wss://127.0.0.1:{channel.cloud.port}", ssl=context) as raw:
        await raw.send("{not a message")
        error = decode(await asyncio.wait_for(raw.recv(), 5))
        assert error.operation == "response" and "not JSON" in error.content["error"]
        await raw.send(Message("edge/raw", "twin", "", "keepalive").encode().decode())
        node, _ = await asyncio.wait_for(channel.to_cloud.get(), 5)
        assert node == "raw"


async def test_certificates_from_another_ca_are_refused(channel: Channel, tmp_path: Path) -> None:
    other = tmp_path / "other-pki"
    ensure_certificates(other)
    crt, key = _node_files(other, tmp_path / "intruder", "n2")
    context = ssl.create_default_context(cafile=str(channel.pki / "ca.crt"))
    context.load_cert_chain(str(crt), str(key))
    with pytest.raises((ssl.SSLError, OSError, websockets.exceptions.WebSocketException)):
        async with websockets.connect(f"wss://127.0.0.1:{channel.cloud.port}", ssl=context) as ws:
            await ws.recv()
    assert "n2" not in channel.cloud.sessions


async def test_edge_reconnects_after_the_cloud_restarts(channel: Channel) -> None:
    port = channel.cloud.port
    await channel.cloud.stop()
    await wait_until(lambda: not channel.edge.connected.is_set(), what="edge noticed")
    assert not await channel.edge.send(Message("edge/n1", "twin", "", "keepalive"))
    await channel.cloud.start("127.0.0.1", port, channel.cloud.handler)
    await asyncio.wait_for(channel.edge.connected.wait(), 15)
    assert channel.edge.connects == 2


async def test_cut_ends_every_session_at_once_with_a_goodbye(
    channel: Channel, tmp_path: Path
) -> None:
    gone: list[str] = []
    channel.cloud.on_gone.append(gone.append)
    port = channel.cloud.port
    context = ssl.create_default_context(cafile=str(channel.pki / "ca.crt"))
    crt, key = _node_files(channel.pki, tmp_path / "raw", "raw")
    context.load_cert_chain(str(crt), str(key))
    async with websockets.connect(f"wss://127.0.0.1:{port}", ssl=context) as raw:
        await wait_until(lambda: "raw" in channel.cloud.sessions, what="second session")
        assert channel.cloud.cut() == 2  # synchronous: no await between the signal and this
        assert channel.cloud.sessions == {}
        with pytest.raises(websockets.exceptions.ConnectionClosed):
            await asyncio.wait_for(raw.recv(), 5)
        assert raw.close_code == 1001 and raw.close_reason == "cloudcore stopping"
    await wait_until(lambda: not channel.edge.connected.is_set(), what="the edge noticed")
    await channel.cloud.stop()  # after a cut: nothing left to do, nothing handed over
    assert gone == []
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)  # no new sessions
