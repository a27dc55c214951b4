"""CloudStream: logs of and commands in edge pods, through the edge's channel session.

An API server asks the way kube-apiserver asks a kubelet: `GET
/containerLogs/{namespace}/{pod}/{container}?tailLines=N&limitBytes=N&previous=true&follow=true`
and a websocket on `/exec/{namespace}/{pod}/{container}?command=..&input=1&tty=1` (Kubernetes'
`v5.channel.k8s.io` or `v4.channel.k8s.io`). Edge nodes are not reachable from the cloud (they
dial in), so cloudcore serves those paths itself (HTTPS on `--stream-port`, 10003 as KubeEdge's,
only to clients with a certificate from the API server's CA) and relays them on the node's
session: a log query as one `pod/query`, a followed log and an exec as a stream session
(`cloudcore.sessions`). Which node: the pod's `spec.nodeName`, from the pod delivery's cache.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from cloudcore import remotecommand
from cloudcore.hub import CloudHub
from cloudcore.portforward import PortForward
from cloudcore.sessions import Sessions
from kedge.channel.message import Message
from kedge.channel.routes import log_query
from kedge.remotecommand import PORT_FORWARD_RELAYED, choose

log = logging.getLogger("kedge.cloudstream")
TIMEOUT = 10.0
MAX_BYTES = 4 * 1024 * 1024  # per answer: fits one channel frame
NodeOf = Callable[[str, str], str | None]  # (namespace, pod) -> node


REASONS = {400: "BadRequest", 404: "NotFound", 503: "ServiceUnavailable", 504: "Timeout"}


def status_response(code: int, message: str) -> JSONResponse:
    """A Kubernetes Status, so kubectl shows the reason and the message."""
    return JSONResponse({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                         "message": message, "reason": REASONS.get(code, "InternalError"),
                         "code": code}, code)  # fmt: skip


def _number(request: Request, name: str) -> int | None:
    text = request.query_params.get(name)
    if text is None or text == "":
        return None
    if not text.isdigit():
        raise ValueError(f"{name} must be a non-negative integer")
    return int(text)


class CloudStream:
    def __init__(self, hub: CloudHub, node_of: NodeOf) -> None:
        """`node_of(ns, pod)`: the edge node a pod runs on."""
        self.hub, self.node_of = hub, node_of
        self.sessions = Sessions(hub)
        self._waiting: dict[str, tuple[str, asyncio.Future[Message]]] = {}

    def on_response(self, message: Message, node: str) -> bool:
        """`node`'s answer to a query this stream sent it; False for anything else."""
        waiting = self._waiting.get(message.parent_id)
        if waiting is None or waiting[0] != node:
            return False
        del self._waiting[message.parent_id]
        if not waiting[1].done():
            waiting[1].set_result(message)
        return True

    async def fetch(self, node: str, request: Message) -> Message | None:
        """Send `request` to `node`; its answer, or None when the node is away or silent."""
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._waiting[request.msg_id] = (node, future)
        try:
            if not await self.hub.send(node, request):
                return None
            return await asyncio.wait_for(future, TIMEOUT)
        except TimeoutError:
            return None
        finally:
            self._waiting.pop(request.msg_id, None)

    async def container_logs(self, request: Request) -> Response:
        namespace = request.path_params["namespace"]
        pod, container = request.path_params["pod"], request.path_params["container"]
        try:
            query = {
                "container": container,
                "tailLines": _number(request, "tailLines"),
                "limitBytes": min(_number(request, "limitBytes") or MAX_BYTES, MAX_BYTES),
                "previous": request.query_params.get("previous") == "true",
            }
        except ValueError as exc:
            return status_response(400, str(exc))
        node = self.node_of(namespace, pod)
        if node is None:
            return status_response(404, f'pod "{pod}" is not on an edge node this cloudcore serves')
        if request.query_params.get("follow") == "true" and not query["previous"]:
            return await self._follow(node, namespace, pod, query)
        answer = await self.fetch(node, log_query(namespace, pod, query))
        if answer is None:
            return status_response(503, f"edge node {node} did not answer (offline?)")
        content = answer.content if isinstance(answer.content, dict) else {}
        if "error" in content:
            return status_response(int(content.get("code") or 400), str(content["error"]))
        return PlainTextResponse(str(content.get("log", "")))

    async def _follow(self, node: str, namespace: str, pod: str, query: dict[str, Any]
                      ) -> Response:  # fmt: skip
        """The log so far, then each line as it is written, until the container ends or the
        client leaves (`kubectl logs -f`)."""
        session = await self.sessions.open(node, "logs", namespace, pod, query)
        if session is None:
            return status_response(503, f"edge node {node} is not connected")

        async def lines() -> AsyncIterator[bytes]:
            try:
                async for _channel, data in session.output():
                    yield data
            finally:
                await self.sessions.close(session)

        return StreamingResponse(lines(), media_type="text/plain")

    async def exec(self, websocket: WebSocket) -> None:
        """`kubectl exec` relayed to the pod's node (see `cloudcore.remotecommand`)."""
        await self._command(websocket, "exec")

    async def attach(self, websocket: WebSocket) -> None:
        """`kubectl attach`: the container's output from now on."""
        await self._command(websocket, "attach")

    async def _command(self, websocket: WebSocket, kind: str) -> None:
        params = websocket.path_params
        namespace, pod = params["namespace"], params["pod"]
        protocol = choose(list(websocket.scope.get("subprotocols") or []))
        node = self.node_of(namespace, pod)
        try:
            wanted = remotecommand.stream_params(websocket, kind)
        except ValueError:
            await websocket.close(code=1008)
            return
        if protocol is None or node is None:
            await websocket.close(code=1008)  # policy: no such pod here, or no protocol
            return
        session = await self.sessions.open(
            node, kind, namespace, pod, {"container": params["container"], **wanted}
        )
        await websocket.accept(subprotocol=protocol)
        if session is None:
            await websocket.send_bytes(
                b"\x03"
                + json.dumps(
                    {"status": "Failure", "message": f"edge node {node} is not connected"}
                ).encode()
            )
            await websocket.close()
            return
        await remotecommand.relay(websocket, self.sessions, session)

    async def port_forward(self, websocket: WebSocket) -> None:
        """`kubectl port-forward` (SPDY inside the websocket, see `cloudcore.portforward`)."""
        namespace, pod = websocket.path_params["namespace"], websocket.path_params["pod"]
        node = self.node_of(namespace, pod)
        if PORT_FORWARD_RELAYED not in (websocket.scope.get("subprotocols") or []) or node is None:
            await websocket.close(code=1008)
            return
        await websocket.accept(subprotocol=PORT_FORWARD_RELAYED)
        await PortForward(websocket, self.sessions, node, namespace, pod).run()

    def app(self, extra: Sequence[BaseRoute] = ()) -> Starlette:
        """The stream port's paths; `extra`: more served on it (device history)."""
        return Starlette(routes=[
            *extra,
            Route("/containerLogs/{namespace}/{pod}/{container}", self.container_logs),
            WebSocketRoute("/exec/{namespace}/{pod}/{container}", self.exec),
            WebSocketRoute("/attach/{namespace}/{pod}/{container}", self.attach),
            WebSocketRoute("/portForward/{namespace}/{pod}", self.port_forward),
        ])  # fmt: skip
