"""A device property's history, asked from the cloud: CloudStream's
`GET /history/{namespace}/{device}/{property}?since=&until=&step=` asks the device's node over
its channel session (the data stays at the edge until someone asks, as with `kubectl logs`) and
answers with the node's answer. A node that is not connected is a 503 at once; one that does not
answer in time a 504."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from cloudcore.stream import CloudStream, status_response
from kedge.channel.routes import history_query

DeviceNode = Callable[[str, str], str | None]  # (namespace, device) -> its node
QUERIED = ("since", "until", "step")


class HistoryQueries:
    def __init__(self, stream: CloudStream, device_node: DeviceNode) -> None:
        self.stream, self.device_node = stream, device_node

    def route(self) -> Route:
        return Route("/history/{namespace}/{device}/{property}", self.answer)

    async def answer(self, request: Request) -> JSONResponse:
        params = request.path_params
        namespace, device = params["namespace"], params["device"]
        node = self.device_node(namespace, device)
        if node is None:
            return status_response(404, f"device {namespace}/{device} is not bound to a node")
        if node not in self.stream.hub.sessions:
            return status_response(
                503,
                f"node {node} of device {namespace}/{device} is not "
                "connected; its history stays on the node until it is back",
            )
        query = {k: request.query_params[k] for k in QUERIED if k in request.query_params}
        answer = await self.stream.fetch(node, history_query(namespace, device, {
            "property": params["property"], **query}))  # fmt: skip
        if answer is None:
            return status_response(504, f"node {node} did not answer the history query in time")
        content = answer.content if isinstance(answer.content, dict) else {}
        if "error" in content:
            code = content.get("code")
            return status_response(code if isinstance(code, int) and 400 <= code < 600 else 502,
                          str(content["error"]))  # fmt: skip
        return JSONResponse(content)
