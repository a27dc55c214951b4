"""`kubectl exec` into a CRI container: CRI's Exec gives the URL of the runtime's streaming server
(containerd's, on the node's loopback), spoken to over a websocket with Kubernetes'
`v4.channel.k8s.io` (each binary message starts with its channel: 0 stdin, 1 stdout, 2 stderr,
3 the final Status, 4 terminal size). v4 has no "end of stdin": a command reading stdin to its
end gets it only through a terminal (^D), as with any v4 client."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.typing import Subprotocol

from edgecore.edged.execs import ExecError
from kedge.remotecommand import ERROR, RESIZE, STDERR, STDIN, STDOUT

PROTOCOL = Subprotocol("v4.channel.k8s.io")
OPEN_TIMEOUT = 10.0


def exit_code(status: dict[str, Any]) -> int:
    """The exit code a remotecommand Status carries (0 for Success)."""
    if status.get("status") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode" and str(cause.get("message", "")).isdigit():
            return int(cause["message"])
    raise ExecError(str(status.get("message") or "the runtime's exec failed"))


class CriExec:
    def __init__(self, connection: ClientConnection, tty: bool) -> None:
        self.connection, self.tty = connection, tty
        self._code: int | None = None

    @classmethod
    async def open(cls, url: str, tty: bool) -> CriExec:
        ws_url = url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        try:
            connection = await connect(ws_url, subprotocols=[PROTOCOL],
                                       open_timeout=OPEN_TIMEOUT, max_size=None)  # fmt: skip
        except (OSError, WebSocketException, TimeoutError) as exc:
            raise ExecError(f"the runtime's streaming server refused the exec: {exc}") from exc
        return cls(connection, tty)

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        with contextlib.suppress(ConnectionClosed):
            async for message in self.connection:
                if not isinstance(message, bytes) or not message:
                    continue
                channel, data = message[0], message[1:]
                if channel in (STDOUT, STDERR) and data:
                    yield channel, data
                elif channel == ERROR and data:
                    try:
                        self._code = exit_code(json.loads(data))
                    except ValueError as exc:
                        raise ExecError(f"the runtime's exec ended: {data[:200]!r}") from exc

    async def write(self, data: bytes) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self.connection.send(bytes([STDIN]) + data)

    def close_stdin(self) -> None:
        return None  # v4 cannot say it (see the module's note)

    async def resize(self, width: int, height: int) -> None:
        if self.tty:
            size = json.dumps({"Width": width, "Height": height}).encode()
            with contextlib.suppress(ConnectionClosed):
                await self.connection.send(bytes([RESIZE]) + size)

    async def wait(self) -> int:
        return self._code if self._code is not None else 0

    async def kill(self) -> None:
        await self.connection.close()
