"""HTTP request and response helpers of the API server: paths to targets, bodies (bounded),
list options, JSON and Table responses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from cloudcore.apiserver import bodies, errors, protodecode
from cloudcore.apiserver.auth import Rule
from cloudcore.apiserver.errors import ApiError
from cloudcore.apiserver.listing import ListOptions
from cloudcore.apiserver.protowire import ProtoError
from cloudcore.apiserver.resources import ResourceType
from cloudcore.apiserver.selectors import (
    FieldRequirement,
    SelectorError,
    parse_fields,
    parse_labels,
)

if TYPE_CHECKING:
    from cloudcore.apiserver.resources import Registry

MAX_BODY = bodies.MAX_BODY
PROTOBUF = "application/vnd.kubernetes.protobuf"
NOT_FOUND = "the server could not find the requested resource"
# subresources beyond status, by the type's storage key
SUBRESOURCES = {
    "/namespaces": ("finalize",),
    "/pods": ("log", "exec", "attach", "portforward"),
    "devices.kubeedge.io/devices": ("history",),  # a property's values, asked from its node
}


def json_response(body: Any, code: int = 200, content_type: str = "application/json") -> Response:
    return Response(orjson.dumps(body), code, media_type=content_type)


def error_response(error: ApiError) -> Response:
    return json_response(error.status(), error.code)


@dataclass(frozen=True, slots=True)
class Target:
    kind: ResourceType
    namespace: str | None
    name: str
    subresource: str


def parse_path(registry: Registry, group: str, version: str, rest: str) -> Target:
    parts = [p for p in rest.split("/") if p]
    namespace: str | None = None
    if (
        len(parts) >= 3
        and parts[0] == "namespaces"
        and not (len(parts) == 3 and parts[2] in ("status", "finalize"))
    ):
        namespace, parts = parts[1], parts[2:]
    if not parts or len(parts) > 3:
        raise ApiError(404, "NotFound", NOT_FOUND)
    kind = registry.find(group, version, parts[0])
    if kind is None or (namespace is not None and not kind.namespaced):
        raise ApiError(404, "NotFound", NOT_FOUND)
    name = parts[1] if len(parts) > 1 else ""
    subresource = parts[2] if len(parts) > 2 else ""
    served = (subresource in SUBRESOURCES.get(kind.key, ())
              or (subresource == "status" and kind.status)
              or (subresource == "scale" and kind.scale is not None))  # fmt: skip
    if subresource and not served:
        raise ApiError(404, "NotFound", NOT_FOUND)
    if kind.namespaced and name and namespace is None:
        raise ApiError(404, "NotFound", NOT_FOUND)
    return Target(kind, namespace if kind.namespaced else "", name, subresource)


async def read_body(request: Request) -> Any:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BODY:
        raise ApiError(413, "RequestEntityTooLarge", "the request body is larger than 3 MiB")
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_BODY:
            raise ApiError(413, "RequestEntityTooLarge", "the request body is larger than 3 MiB")
    if not data.strip():
        raise errors.bad_request("the request has no body")
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if content_type == PROTOBUF:
        return protobuf_body(data)
    if "protobuf" in content_type or "cbor" in content_type:
        raise ApiError(
            415, "UnsupportedMediaType", f"the body's content type {content_type} is not supported"
        )
    return bodies.decode(data, content_type)


def protobuf_body(data: bytes) -> dict[str, Any]:
    """A Kubernetes protobuf body (what kubectl create sends for built-in types) as JSON."""
    try:
        return protodecode.decode_body(data)
    except protodecode.Unsupported as exc:
        raise ApiError(415, "UnsupportedMediaType", f"protobuf body refused: {exc}") from exc
    except ProtoError as exc:
        raise errors.bad_request(f"the protobuf body cannot be decoded: {exc}") from exc


def check_accept(request: Request) -> None:
    """Answers are JSON: a client that accepts only something else (protobuf alone) gets 406,
    as from Kubernetes, rather than a body it cannot read."""
    accept = request.headers.get("accept", "").strip()
    if not accept:
        return
    for media in accept.split(","):
        kind = media.split(";")[0].strip().lower()
        if kind in ("*/*", "application/*", "application/json", "text/plain", "text/*"):
            return
    raise ApiError(406, "NotAcceptable", f"only application/json is served, not {accept}")


def wants_table(request: Request) -> bool:
    return "as=Table" in request.headers.get("accept", "")


def list_options(request: Request, kind: ResourceType, node: str | None) -> ListOptions:
    query = request.query_params
    try:
        labels = parse_labels(query.get("labelSelector"))
        fields = parse_fields(query.get("fieldSelector"), kind.fields)
    except SelectorError as exc:
        raise errors.bad_request(f"unable to parse requirement: {exc}") from exc
    if node is not None and Rule.FILTERED in kind.node_access.values():
        fields.append(FieldRequirement("spec.nodeName", True, node))  # a node sees its own
    limit = query.get("limit", "0")
    if not limit.isdigit():
        raise errors.bad_request(f"limit: {limit!r} is not a non-negative integer")
    return ListOptions(labels, fields, int(limit), query.get("continue", ""))


def header_text(text: str) -> str:
    """`text` as a quoted-string body: printable ASCII, everything else escaped."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif " " <= char <= "~":
            out.append(char)
        else:
            out.append(char.encode("unicode_escape").decode().replace("\\", "\\\\"))
    return "".join(out)


async def delete_options(request: Request) -> dict[str, Any]:
    """DeleteOptions from the body, if any (kubectl sends propagationPolicy there)."""
    try:
        body = await read_body(request)
    except ApiError as exc:
        if exc.code == 400 and "no body" in exc.message:
            return {}
        raise
    if not isinstance(body, dict):
        raise errors.bad_request("DeleteOptions must be an object")
    return body
