"""`pods/{name}/log`: the API server asks the pod's node for the log, as kube-apiserver asks a
kubelet (`/containerLogs/...` on the node's daemon endpoint).

An edge node's endpoint is cloudcore's CloudStream, which relays to the edge over the channel:
cloudcore puts its address on the Node (annotation `cloudstream.kedge.io/endpoint`); without it
the node's InternalIP and `status.daemonEndpoints.kubeletEndpoint.Port` are used. Like
kube-apiserver's default towards kubelets, the endpoint's certificate is not verified.
"""

from __future__ import annotations

from typing import Any

import httpx
from starlette.responses import Response

from cloudcore.apiserver.errors import ApiError

STREAM_ANNOTATION = "cloudstream.kedge.io/endpoint"
TIMEOUT = 15.0


def _endpoint(node: dict[str, Any]) -> str | None:
    annotations = (node.get("metadata") or {}).get("annotations") or {}
    if annotations.get(STREAM_ANNOTATION):
        return str(annotations[STREAM_ANNOTATION]).rstrip("/")
    status = node.get("status") or {}
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    address = next((a.get("address") for a in status.get("addresses") or []
                    if a.get("type") == "InternalIP"), None)  # fmt: skip
    return f"https://{address}:{port}" if address and port else None


def container_of(pod: dict[str, Any], wanted: str) -> str:
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


async def pod_log(pod: dict[str, Any], node: dict[str, Any] | None, query: Any) -> Response:
    """The log text from the node, or the node's error as a Status."""
    name, namespace = pod["metadata"]["name"], pod["metadata"].get("namespace", "default")
    container = container_of(pod, str(query.get("container") or ""))
    node_name = (pod.get("spec") or {}).get("nodeName")
    if not node_name:
        raise ApiError(400, "BadRequest", f"pod {name} does not have a host assigned")
    endpoint = _endpoint(node) if node is not None else None
    if endpoint is None:
        raise ApiError(503, "ServiceUnavailable", f"node {node_name} has no log endpoint")
    params = {k: query[k] for k in ("tailLines", "limitBytes", "previous") if query.get(k)}
    url = f"{endpoint}/containerLogs/{namespace}/{name}/{container}"
    try:
        async with httpx.AsyncClient(verify=False, timeout=TIMEOUT) as client:  # noqa: S501
            answer = await client.get(url, params=params)
    except httpx.HTTPError as exc:
        why = f"node {node_name}'s log endpoint did not answer: {exc!r}"
        raise ApiError(503, "ServiceUnavailable", why) from exc
    return Response(answer.content, answer.status_code,
                    media_type=answer.headers.get("content-type", "text/plain"))  # fmt: skip
