"""CloudStream: container logs of edge pods, fetched from the edge over the channel.

An API server asks for logs the way kube-apiserver asks a kubelet: `GET
/containerLogs/{namespace}/{pod}/{container}?tailLines=N&limitBytes=N&previous=true`. Edge nodes
are not reachable from the cloud (they dial in), so cloudcore serves that path itself (HTTPS on
`--stream-port`, 10003 as KubeEdge's) and relays it as a `pod/query` message on the node's
session; the edge answers with the log text. Which node: the pod's `spec.nodeName`, from the
pod delivery's cache. Follow (`-f`) is not offered: the answer is what the log holds now.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from cloudcore.hub import CloudHub
from kedge.channel.message import Message
from kedge.channel.routes import log_query

log = logging.getLogger("kedge.cloudstream")
TIMEOUT = 10.0
MAX_BYTES = 4 * 1024 * 1024  # per answer: fits one channel frame
NodeOf = Callable[[str, str], str | None]  # (namespace, pod) -> node


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                         "message": message, "code": status}, status)  # fmt: skip


def _number(request: Request, name: str) -> int | None:
    text = request.query_params.get(name)
    if text is None or text == "":
        return None
    if not text.isdigit():
        raise ValueError(f"{name} must be a non-negative integer")
    return int(text)


class CloudStream:
    def __init__(self, hub: CloudHub, node_of: NodeOf) -> None:
        self.hub, self.node_of = hub, node_of
        self._waiting: dict[str, asyncio.Future[Message]] = {}

    def on_response(self, message: Message) -> bool:
        """An edge's answer to a query this stream sent; False for anything else."""
        future = self._waiting.pop(message.parent_id, None)
        if future is None:
            return False
        if not future.done():
            future.set_result(message)
        return True

    async def fetch(self, node: str, request: Message) -> Message | None:
        """Send `request` to `node`; its answer, or None when the node is away or silent."""
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._waiting[request.msg_id] = future
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
            return _error(400, str(exc))
        node = self.node_of(namespace, pod)
        if node is None:
            return _error(404, f'pod "{pod}" is not on an edge node this cloudcore serves')
        answer = await self.fetch(node, log_query(namespace, pod, query))
        if answer is None:
            return _error(503, f"edge node {node} did not answer (offline?)")
        content = answer.content if isinstance(answer.content, dict) else {}
        if "error" in content:
            return _error(int(content.get("code") or 400), str(content["error"]))
        return PlainTextResponse(str(content.get("log", "")))

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/containerLogs/{namespace}/{pod}/{container}", self.container_logs),
        ])  # fmt: skip
