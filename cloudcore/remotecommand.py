"""Kubernetes' remotecommand websocket protocol (`v5.channel.k8s.io`, `v4.channel.k8s.io`) on one
side, a stream session to the edge on the other. Every binary frame starts with its channel: 0
stdin, 1 stdout, 2 stderr, 3 error (the command's final metav1.Status, JSON), 4 terminal size
(`{"Width", "Height"}`); v5 adds 255, the client's "no more stdin" (`[255, 0]`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from cloudcore.sessions import Session, Sessions
from kedge.remotecommand import ERROR


def stream_params(websocket: WebSocket, kind: str) -> dict[str, Any]:
    """kubelet's exec and attach query (`command` repeated, `input`, `tty`) as the session's
    parameters."""
    query = websocket.query_params
    flag = {"1", "true"}
    params: dict[str, Any] = {"stdin": query.get("input") in flag, "tty": query.get("tty") in flag}
    if kind == "exec":
        params["command"] = query.getlist("command")
        if not params["command"]:
            raise ValueError("exec needs at least one command argument")
    return params


async def relay(websocket: WebSocket, sessions: Sessions, session: Session) -> None:
    """Frames both ways until the command ends (its Status on the error channel) or the
    client leaves (the edge stops the command)."""
    upstream = asyncio.get_running_loop().create_task(_from_client(websocket, sessions, session))
    try:
        async for channel, data in session.output():
            await websocket.send_bytes(bytes([channel]) + data)
        final = session.ended or {"status": "Failure", "message": "the session ended"}
        await websocket.send_bytes(bytes([ERROR]) + json.dumps(final).encode())
        await websocket.close()
    except (WebSocketDisconnect, RuntimeError):  # the client is gone
        pass
    finally:
        upstream.cancel()
        await sessions.close(session)


async def _from_client(websocket: WebSocket, sessions: Sessions, session: Session) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            data = message.get("bytes") or (message.get("text") or "").encode()
            if data:
                await sessions.send(session, data[0], data[1:])
    await sessions.close(session)
