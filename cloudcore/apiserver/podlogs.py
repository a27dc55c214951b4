"""`pods/{name}/log` and `pods/{name}/exec`: the API server asks the pod's node, as
kube-apiserver asks a kubelet (`/containerLogs/...`, `/exec/...` on the node's daemon endpoint),
showing its node-client certificate.

An edge node's endpoint is cloudcore's CloudStream, which relays to the edge over the channel:
cloudcore puts its address on the Node (annotation `cloudstream.kedge.io/endpoint`); without it
the node's InternalIP and `status.daemonEndpoints.kubeletEndpoint.Port` are used. Like
kube-apiserver's default towards kubelets, the endpoint's certificate is not verified.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from starlette.responses import Response, StreamingResponse
from starlette.websockets import WebSocket
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.typing import Subprotocol

from cloudcore.apiserver.errors import ApiError
from kedge.remotecommand import PORT_FORWARD, PORT_FORWARD_RELAYED

STREAM_ANNOTATION = "cloudstream.kedge.io/endpoint"
TIMEOUT = 15.0
MAX_FRAME = 1024 * 1024
Obj = dict[str, Any]


def endpoint(node: Obj | None, node_name: str) -> str:
    annotations = ((node or {}).get("metadata") or {}).get("annotations") or {}
    if annotations.get(STREAM_ANNOTATION):
        return str(annotations[STREAM_ANNOTATION]).rstrip("/")
    status = (node or {}).get("status") or {}
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    address = next((a.get("address") for a in status.get("addresses") or []
                    if a.get("type") == "InternalIP"), None)  # fmt: skip
    if not address or not port:
        raise ApiError(503, "ServiceUnavailable", f"node {node_name} has no stream endpoint")
    return f"https://{address}:{port}"


def container_of(pod: Obj, wanted: str) -> str:
    names = [str(c.get("name")) for c in (pod.get("spec") or {}).get("containers") or []]
    name = str(pod["metadata"]["name"])
    if wanted:
        if wanted not in names:
            raise ApiError(400, "BadRequest",
                           f"container {wanted} is not valid for pod {name}")  # fmt: skip
        return wanted
    if len(names) != 1:
        raise ApiError(400, "BadRequest", f"a container name must be specified for pod {name}, "
                       f"choose one of: [{' '.join(names)}]")  # fmt: skip
    return names[0]


def node_of(pod: Obj) -> str:
    node_name = (pod.get("spec") or {}).get("nodeName")
    if not node_name:
        raise ApiError(400, "BadRequest",
                       f"pod {pod['metadata']['name']} does not have a host assigned")  # fmt: skip
    return str(node_name)


class NodeClient:
    """Requests to nodes' stream endpoints, with the node-client certificate."""

    def __init__(self, certificate: tuple[Path, Path] | None) -> None:
        self.context = ssl.create_default_context()
        self.context.check_hostname, self.context.verify_mode = False, ssl.CERT_NONE
        if certificate is not None:
            self.context.load_cert_chain(str(certificate[0]), str(certificate[1]))

    async def pod_log(self, pod: Obj, node: Obj | None, query: Any) -> Response:
        """The log text from the node (followed with `follow=true`), or the node's error."""
        name, namespace = pod["metadata"]["name"], pod["metadata"].get("namespace", "default")
        container = container_of(pod, str(query.get("container") or ""))
        node_name = node_of(pod)
        url = f"{endpoint(node, node_name)}/containerLogs/{namespace}/{name}/{container}"
        params = {k: query[k] for k in ("tailLines", "limitBytes", "previous", "follow")
                  if query.get(k)}  # fmt: skip
        client = httpx.AsyncClient(verify=self.context, timeout=httpx.Timeout(TIMEOUT, read=None))
        try:
            answer = await client.send(client.build_request("GET", url, params=params),
                                       stream=True)  # fmt: skip
        except httpx.HTTPError as exc:
            await client.aclose()
            why = f"node {node_name}'s stream endpoint did not answer: {exc!r}"
            raise ApiError(503, "ServiceUnavailable", why) from exc

        async def body() -> AsyncIterator[bytes]:
            try:
                async for chunk in answer.aiter_raw():
                    yield chunk
            except httpx.HTTPError:
                return  # the node went away mid-stream: the log ends here
            finally:
                await answer.aclose()
                await client.aclose()

        return StreamingResponse(
            body(), answer.status_code, media_type=answer.headers.get("content-type", "text/plain")
        )

    async def device_history(self, device: Obj, node: Obj | None, query: Any) -> Response:
        """`devices/{name}/history?property=&since=&until=&step=`: asked of the device's node."""
        meta = device["metadata"]
        node_name = str((device.get("spec") or {}).get("nodeName") or "")
        prop = str(query.get("property") or "")
        if not node_name or not prop:
            raise ApiError(400, "BadRequest", "history needs ?property= and a device bound to a "
                           "node")  # fmt: skip
        url = (f"{endpoint(node, node_name)}/history/{meta.get('namespace', 'default')}/"
               f"{meta['name']}/{quote(prop, safe='')}")  # fmt: skip
        params = {k: query[k] for k in ("since", "until", "step") if query.get(k)}
        try:
            async with httpx.AsyncClient(verify=self.context, timeout=TIMEOUT) as client:
                answer = await client.get(url, params=params)
        except httpx.HTTPError as exc:
            raise ApiError(
                503,
                "ServiceUnavailable",
                f"node {node_name}'s stream endpoint did not answer: {exc!r}",
            ) from exc
        return Response(answer.content, answer.status_code, media_type="application/json")

    async def pod_command(self, websocket: WebSocket, what: str, pod: Obj, node: Obj | None,
                          protocol: str) -> None:  # fmt: skip
        """kubectl's exec, attach or port-forward websocket relayed, frame for frame, to the
        node's endpoint for it."""
        name, namespace = pod["metadata"]["name"], pod["metadata"].get("namespace", "default")
        node_name = node_of(pod)
        base = endpoint(node, node_name).replace("https://", "wss://", 1)
        url = f"{base}/portForward/{namespace}/{name}"
        if what != "portforward":
            query = websocket.query_params
            container = container_of(pod, str(query.get("container") or ""))
            wanted = [("command", c) for c in query.getlist("command")] + [
                ("input", "1" if query.get("stdin") == "true" else "0"),
                ("tty", "1" if query.get("tty") == "true" else "0")]  # fmt: skip
            url = f"{base}/{what}/{namespace}/{name}/{container}?{urlencode(wanted)}"
        try:
            relayed = PORT_FORWARD_RELAYED if protocol == PORT_FORWARD else protocol
            upstream = await connect(url, ssl=self.context, subprotocols=[Subprotocol(relayed)],
                                     max_size=MAX_FRAME, open_timeout=TIMEOUT)  # fmt: skip
        except (OSError, WebSocketException, TimeoutError) as exc:
            raise ApiError(
                503, "ServiceUnavailable", f"node {node_name}'s stream endpoint refused: {exc}"
            ) from exc
        await websocket.accept(subprotocol=protocol)
        async with upstream:
            down = asyncio.get_running_loop().create_task(_down(upstream, websocket))
            try:
                while True:
                    message = await websocket.receive()
                    if message["type"] == "websocket.disconnect":
                        break
                    data = message.get("bytes")  # empty binary messages too (SPDY sends them)
                    await upstream.send(data if data is not None else message.get("text") or "")
            except (ConnectionClosed, RuntimeError):
                pass
            finally:
                down.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await down


async def _down(upstream: ClientConnection, websocket: WebSocket) -> None:
    """The node's frames to the client; the client's websocket closes when the node's does."""
    with contextlib.suppress(ConnectionClosed, RuntimeError):
        async for frame in upstream:
            await websocket.send_bytes(frame if isinstance(frame, bytes) else frame.encode())
    with contextlib.suppress(RuntimeError):
        await websocket.close()
