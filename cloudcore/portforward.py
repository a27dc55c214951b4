"""`kubectl port-forward` at CloudStream. The websocket carries SPDY (kubectl's
`SPDY/3.1+portforward.k8s.io`, relayed by the API server; see `cloudcore.spdy`), each forwarded
connection a pair of SPDY streams named by the headers `streamtype` (error, data), `port` and
`requestid`, as kubelet's port-forward serves them. Each data stream becomes a stream session to
the pod's node, which connects to the pod's port; bytes flow both ways; what goes wrong is
written on the error stream, as kubectl expects."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.websockets import WebSocket, WebSocketDisconnect

from cloudcore.sessions import Session, Sessions
from cloudcore.spdy import (
    GOAWAY,
    PING,
    RST_STREAM,
    SYN_STREAM,
    Frame,
    FrameReader,
    FrameWriter,
    SpdyError,
)
from kedge.remotecommand import CLOSE, STDIN

log = logging.getLogger("kedge.cloudstream")


class PortForward:
    def __init__(self, websocket: WebSocket, sessions: Sessions, node: str, namespace: str,
                 pod: str) -> None:  # fmt: skip
        self.websocket, self.sessions = websocket, sessions
        self.node, self.namespace, self.pod = node, namespace, pod
        self.reader, self.writer = FrameReader(), FrameWriter()
        self.errors: dict[str, int] = {}  # requestid -> its error stream
        self.data: dict[int, Session] = {}  # data stream -> its session
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    async def send(self, frame: bytes) -> None:
        async with self._lock:  # frames must not interleave; header compression is ordered
            await self.websocket.send_bytes(frame)

    async def run(self) -> None:
        try:
            while True:
                message = await self.websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                if message.get("bytes") is None:
                    raise SpdyError("a text message where SPDY bytes belong")
                for frame in self.reader.feed(message["bytes"]):  # a frame may span messages
                    if not await self.handle(frame):
                        return
        except SpdyError as exc:
            log.warning("port-forward: %s", exc, extra={"node": self.node})
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            for task in self._tasks:
                task.cancel()
            for session in self.data.values():
                await self.sessions.close(session)

    async def handle(self, frame: Frame) -> bool:
        """One frame from kubectl; False once the connection is going away."""
        if frame.kind == SYN_STREAM:
            await self.open(frame)
        elif frame.kind == 0 and frame.stream in self.data:
            session = self.data[frame.stream]
            if frame.data:
                await self.sessions.send(session, STDIN, frame.data)
            if frame.fin:
                await self.sessions.send(session, CLOSE, bytes([STDIN]))
        elif frame.kind == RST_STREAM and frame.stream in self.data:
            await self.sessions.close(self.data.pop(frame.stream))
        elif frame.kind == PING:
            await self.send(self.writer.ping(frame.value))
        return frame.kind != GOAWAY

    async def open(self, frame: Frame) -> None:
        headers = frame.headers
        request, kind = headers.get("requestid", ""), headers.get("streamtype")
        await self.send(self.writer.syn_reply(frame.stream, {}))
        if kind == "error":
            self.errors[request] = frame.stream
            return
        port = headers.get("port", "")
        session = None
        if kind == "data" and port.isdigit():
            session = await self.sessions.open(self.node, "portforward", self.namespace,
                                               self.pod, {"port": int(port)})  # fmt: skip
        if session is None:
            await self._fail(request, frame.stream, f"cannot forward port {port!r} of pod "
                             f"{self.namespace}/{self.pod}: node {self.node} is not connected "
                             "or the stream is not a data stream")  # fmt: skip
            return
        self.data[frame.stream] = session
        task = asyncio.get_running_loop().create_task(self._relay(request, frame.stream, session))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _relay(self, request: str, stream: int, session: Session) -> None:
        """The pod's bytes to kubectl until the pod's side ends."""
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            async for _channel, data in session.output():
                await self.send(self.writer.data(stream, data))
            ended = session.ended or {}
            if ended.get("status") == "Failure":
                await self._fail(request, stream, str(ended.get("message", "forwarding failed")))
                return
            await self.send(self.writer.data(stream, b"", fin=True))
        self.data.pop(stream, None)

    async def _fail(self, request: str, stream: int, message: str) -> None:
        error = self.errors.get(request)
        if error is not None:
            await self.send(self.writer.data(error, message.encode(), fin=True))
        await self.send(self.writer.data(stream, b"", fin=True))
