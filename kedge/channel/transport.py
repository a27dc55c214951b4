"""Sending channel messages over a websocket, for both ends (CloudHub and EdgeHub)."""

from __future__ import annotations

from websockets.asyncio.connection import Connection
from websockets.exceptions import ConnectionClosed

from kedge.channel.message import Message


async def send(connection: Connection | None, message: Message) -> bool:
    """False when there is no connection or it closed: the caller keeps the message to retry."""
    if connection is None:
        return False
    try:
        await connection.send(message.encode().decode())
    except ConnectionClosed:
        return False
    return True
