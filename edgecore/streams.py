"""Stream sessions the cloud opens on this node's pods (`kubectl logs -f`, `kubectl exec`),
over the channel as KubeEdge's EdgeStream tunnels them: output goes up as numbered-channel
frames as it is made, input (stdin, terminal size) comes down, and the session's end carries
the command's Status. A session belongs to the connection that opened it: a reconnect ends
them all (the cloud side is gone). At most MAX_SESSIONS at once."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from edgecore.edged.execs import ExecError, ExecProcess
from edgecore.edged.logs import LogError, plain, read_log
from edgecore.edged.manager import Edged
from kedge.channel import routes
from kedge.channel.message import Message
from kedge.remotecommand import CLOSE, RESIZE, STDIN, STDOUT

log = logging.getLogger("kedge.edgecore")
MAX_SESSIONS = 32
FOLLOW_PERIOD = 0.1  # seconds between looks at a followed log (kubelet watches with fsnotify)
CHUNK = 32 * 1024
Send = Callable[[Message], Awaitable[object]]


def status(code: int, message: str = "") -> dict[str, Any]:
    """The error channel's metav1.Status for an exit code, as kubelet writes it."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
            "message": message or f"command terminated with non-zero exit code: exit code {code}",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}  # fmt: skip


def failure(message: str) -> dict[str, Any]:
    return {"metadata": {}, "status": "Failure", "reason": "InternalError", "message": message}


class StreamHost:
    def __init__(self, node: str, send: Send, edged: Edged) -> None:
        self.node, self.send, self.edged = node, send, edged
        self.source = routes.edge_source(node)
        self._sessions: dict[str, asyncio.Task[None]] = {}
        self._inputs: dict[str, asyncio.Queue[tuple[int, bytes] | None]] = {}

    async def on_open(self, message: Message) -> None:
        session = message.resource.removeprefix("stream/")
        content = message.content if isinstance(message.content, dict) else {}
        if not session or session in self._sessions:
            return
        if len(self._sessions) >= MAX_SESSIONS:
            await self._end(session, failure(f"node {self.node} has {MAX_SESSIONS} sessions"))
            return
        key = f"{content.get('namespace')}/{content.get('pod')}"
        work = {"logs": self._follow, "exec": self._exec, "attach": self._attach,
                "portforward": self._forward}.get(str(content.get("kind")))  # fmt: skip
        if work is None:
            await self._end(session, failure(f"unknown session kind {content.get('kind')!r}"))
            return
        self._inputs[session] = asyncio.Queue(maxsize=64)
        task = asyncio.get_running_loop().create_task(self._run(session, work, key, content))
        self._sessions[session] = task

    async def on_data(self, message: Message) -> None:
        try:
            session, channel, data = routes.stream_frame(message)
        except ValueError as exc:
            log.warning("bad stream frame: %s", exc, extra={"node": self.node})
            return
        queue = self._inputs.get(session)
        if queue is not None:
            await queue.put((channel, data))

    async def on_close(self, message: Message) -> None:
        """The cloud side left: the session's command is stopped."""
        task = self._sessions.get(message.resource.removeprefix("stream/"))
        if task is not None:
            task.cancel()

    def close_all(self) -> None:
        for task in self._sessions.values():
            task.cancel()

    async def _run(self, session: str, work: Callable[..., Awaitable[dict[str, Any]]], key: str,
                   content: dict[str, Any]) -> None:  # fmt: skip
        try:
            ended = await work(session, key, content)
        except (ExecError, LogError, ValueError, OSError) as exc:
            ended = failure(str(exc))
        except asyncio.CancelledError:
            return
        finally:
            self._sessions.pop(session, None)
            self._inputs.pop(session, None)
        await self._end(session, ended)

    async def _end(self, session: str, ended: dict[str, Any]) -> None:
        await self.send(routes.stream_close(self.source, session, ended))

    async def _out(self, session: str, channel: int, data: bytes) -> None:
        for start in range(0, len(data), CHUNK):
            await self.send(routes.stream_data(self.source, session, channel,
                                               data[start : start + CHUNK]))  # fmt: skip

    async def _follow(self, session: str, key: str, content: dict[str, Any]) -> dict[str, Any]:
        """The log as `kubectl logs` reads it, then what the container writes until it ends."""
        name = str(content.get("container") or "")
        container = self.edged.container(key, name)
        path = container.log_path() if container is not None else None
        query = {k: content.get(k) for k in ("tailLines", "limitBytes")} | {"container": name}
        offset = path.stat().st_size if path is not None and path.exists() else 0
        await self._out(session, STDOUT, read_log(path, query).encode())
        while path is not None and container is not None:
            size = path.stat().st_size if path.exists() else 0
            if size > offset:
                with path.open("rb") as file:
                    file.seek(offset)
                    data = file.read(min(size - offset, 4 * CHUNK))
                complete = data[: data.rfind(b"\n") + 1] or data  # CRI lines are whole lines
                offset += len(complete)
                await self._out(session, STDOUT, plain(complete))
            elif size < offset or not container.running:
                break  # rotated (a restart) or ended: as kubelet's follow ends
            else:
                await asyncio.sleep(FOLLOW_PERIOD)
        return status(0)

    async def _attach(self, session: str, key: str, content: dict[str, Any]) -> dict[str, Any]:
        """`kubectl attach`: the container's output from now on, until it ends. A container's
        own stdin is not kept open by the runtimes here, so `-i` is refused."""
        if content.get("stdin"):
            raise ExecError("attach with stdin (-i) is not supported: containers here do not "
                            "keep their stdin open; use kubectl exec -i")  # fmt: skip
        return await self._follow(session, key, {**content, "tailLines": 0})

    async def _exec(self, session: str, key: str, content: dict[str, Any]) -> dict[str, Any]:
        argv = content.get("command")
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            raise ValueError("exec needs a command: a list of strings")
        container = self.edged.container(key, str(content.get("container") or ""))
        if container is None:
            raise ExecError(f"pod {key} has no container {content.get('container')!r} here")
        stdin, tty = bool(content.get("stdin")), bool(content.get("tty"))
        process = await container.exec(argv, stdin, tty)
        feeder = asyncio.get_running_loop().create_task(self._feed(session, process, stdin))
        try:
            async for channel, data in process.output():
                await self._out(session, channel, data)
            code = await process.wait()
        finally:
            feeder.cancel()
            await process.kill()
        log.info("exec ended", extra={"node": self.node, "pod": key, "code": code})
        return status(code)

    async def _forward(self, session: str, key: str, content: dict[str, Any]) -> dict[str, Any]:
        """`kubectl port-forward`: one connection to the pod's port, bytes both ways."""
        port, address = content.get("port"), self.edged.address(key)
        if not isinstance(port, int) or not 0 < port < 65536 or address is None:
            raise ValueError(f"pod {key} has no port {port!r} here")
        try:
            reader, writer = await asyncio.open_connection(address, port)
        except OSError as exc:
            raise ValueError(f"error forwarding port {port} to pod {key}: {exc}") from exc
        feeder = asyncio.get_running_loop().create_task(self._feed_socket(session, writer))
        try:
            while data := await reader.read(CHUNK):
                await self._out(session, STDOUT, data)
        finally:
            feeder.cancel()
            writer.close()
        return status(0)

    async def _feed_socket(self, session: str, writer: asyncio.StreamWriter) -> None:
        queue = self._inputs[session]
        while (item := await queue.get()) is not None:
            channel, data = item
            if channel == STDIN:
                writer.write(data)
                await writer.drain()
            elif channel == CLOSE and writer.can_write_eof():
                writer.write_eof()  # the client closed its side

    async def _feed(self, session: str, process: ExecProcess, stdin: bool) -> None:
        queue = self._inputs[session]
        while (item := await queue.get()) is not None:
            channel, data = item
            if channel == STDIN and stdin:
                await process.write(data)
            elif channel == RESIZE:
                await _resize(process, data)
            elif channel == CLOSE and data[:1] == bytes([STDIN]):
                process.close_stdin()


async def _resize(process: ExecProcess, data: bytes) -> None:
    try:
        size = json.loads(data)
        width, height = int(size["Width"]), int(size["Height"])
    except (ValueError, KeyError, TypeError):
        log.warning("bad terminal size frame")
        return
    await process.resize(width, height)
