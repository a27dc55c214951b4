"""The verbs on resource paths, dispatched by (method, whether the path names an object), each
authorised against the type's node access before it runs."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from cloudcore.apiserver import errors
from cloudcore.apiserver.auth import Request as AuthzRequest
from cloudcore.apiserver.auth import User, allowed
from cloudcore.apiserver.errors import ApiError
from cloudcore.apiserver.podlogs import NodeClient, container_of, node_of
from cloudcore.apiserver.references import references
from cloudcore.apiserver.scale import Scaling
from cloudcore.apiserver.service import DRY_RUN, ApiService, dry_run
from cloudcore.apiserver.tables import TABLE_CONTENT_TYPE, table
from cloudcore.apiserver.watch import WatchRequest
from cloudcore.apiserver.wire import (
    Target,
    delete_options,
    json_response,
    list_options,
    read_body,
    wants_table,
)

log = logging.getLogger("kedge.apiserver")
DEFAULT_WATCH_TIMEOUT = 1800.0
MAX_WATCH_TIMEOUT = 3600.0  # a watch asking for longer ends then (clients re-watch)
Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Call:
    """One request on a resource path."""

    request: Request
    user: User
    target: Target

    @property
    def namespace(self) -> str:
        return self.target.namespace if self.target.namespace is not None else ""

    @property
    def strict(self) -> bool:
        return self.request.query_params.get("fieldValidation") == "Strict"

    def query(self, name: str, default: str = "") -> str:
        return self.request.query_params.get(name, default)


class Verbs:
    def __init__(self, service: ApiService, nodes: NodeClient) -> None:
        self.service, self.scaling, self.nodes = service, Scaling(service), nodes
        self.table: dict[tuple[str, bool], Callable[[Call], Awaitable[Response]]] = {
            ("GET", False): self.list_or_watch,
            ("GET", True): self.get,
            ("POST", False): self.create,
            ("PUT", True): self.update,
            ("PATCH", True): self.patch,
            ("DELETE", True): self.delete,
            ("DELETE", False): self.delete_collection,
        }

    async def __call__(self, request: Request, user: User, target: Target) -> Response:
        handler = self.table.get((request.method, bool(target.name)))
        if request.method == "GET" and target.subresource == "log":
            handler = self.pod_log
        if target.subresource == "history":
            handler = self.device_history if request.method == "GET" else None
        if target.subresource in ("exec", "attach", "portforward"):
            handler = self.stream_over_http
        if target.subresource == "scale":
            handler = {"GET": self.get_scale, "PUT": self.update_scale,
                       "PATCH": self.patch_scale}.get(request.method)  # fmt: skip
        if handler is None:
            raise ApiError(405, "MethodNotAllowed", f"{request.method} is not supported here")
        return await handler(Call(request, user, target))

    # authorisation -----------------------------------------------------------------------------

    def _authorize(self, call: Call, verb: str, bound: Obj | None, name: str | None = None
                   ) -> None:  # fmt: skip
        target, user = call.target, call.user
        name = target.name if name is None else name
        spec = (bound or {}).get("spec")
        node = spec.get("nodeName") if isinstance(spec, dict) else None
        key, namespace = target.kind.key, call.namespace
        request = AuthzRequest(verb, key, namespace, name, target.subresource, node,
                               lambda of: self._used_on(of, key, namespace, name))  # fmt: skip
        if allowed(user, request, target.kind.node_access):
            return
        kind = target.kind
        what = kind.plural + (f"/{target.subresource}" if target.subresource else "")
        where = f' in the namespace "{target.namespace}"' if target.namespace else ""
        raise ApiError(403, "Forbidden", f'{kind.plural} "{name}" is forbidden: User '
                       f'"{user.name}" cannot {verb} resource "{what}" in API group '
                       f'"{kind.group}"{where}',
                       {"name": name, "group": kind.group, "kind": kind.plural})  # fmt: skip

    def _used_on(self, node: str, key: str, namespace: str, name: str) -> bool:
        """Whether a pod bound to `node` uses the Secret or ConfigMap `namespace/name`."""
        pods, _ = self.service.store.list("/pods", namespace)
        return any((p.get("spec") or {}).get("nodeName") == node
                   and (key, name) in references(p) for p in pods)  # fmt: skip

    def _current(self, call: Call) -> Obj | None:
        """The stored object, needed to authorise a node (its spec.nodeName)."""
        if call.user.node is None or not call.target.name:
            return None
        return self.service.store.get(call.target.kind.key, call.namespace, call.target.name)

    # verbs -------------------------------------------------------------------------------------

    async def list_or_watch(self, call: Call) -> Response:
        kind, request = call.target.kind, call.request
        verb = "watch" if call.query("watch") in ("true", "1") else "list"
        self._authorize(call, verb, None)
        options = list_options(request, kind, call.user.node)
        scope = call.target.namespace if kind.namespaced else None
        if verb == "watch":
            return self._watch(call, WatchRequest(
                kind, scope, options, call.query("resourceVersion"),
                call.query("allowWatchBookmarks") in ("true", "1"), _watch_seconds(call),
                call.query("sendInitialEvents") == "true"))  # fmt: skip
        items, rv, token = self.service.list_items(kind, scope, options)
        if wants_table(request):
            return json_response(table(kind, items, rv, token), content_type=TABLE_CONTENT_TYPE)
        metadata: Obj = {"resourceVersion": rv, **({"continue": token} if token else {})}
        return json_response({"kind": kind.list_kind, "apiVersion": kind.api_version,
                              "metadata": metadata, "items": items})  # fmt: skip

    async def get(self, call: Call) -> Response:
        self._authorize(call, "get", self._current(call))
        obj = self.service.get(call.target.kind, call.namespace, call.target.name)
        if wants_table(call.request):
            rv = obj["metadata"].get("resourceVersion", "")
            return json_response(table(call.target.kind, [obj], rv),
                                 content_type=TABLE_CONTENT_TYPE)  # fmt: skip
        return json_response(obj)

    def _bound(self, call: Call) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The object a node-served read is about (authorized as a get) and its node, if any."""
        self._authorize(call, "get", self._current(call))
        obj = self.service.get(call.target.kind, call.namespace, call.target.name)
        node_name = str((obj.get("spec") or {}).get("nodeName") or "")
        return obj, self.service.store.get("/nodes", "", node_name) if node_name else None

    async def pod_log(self, call: Call) -> Response:
        return await self.nodes.pod_log(*self._bound(call), call.request.query_params)

    async def device_history(self, call: Call) -> Response:
        return await self.nodes.device_history(*self._bound(call), call.request.query_params)

    async def stream_over_http(self, call: Call) -> Response:
        """A pod stream asked for without a websocket (kubectl's SPDY fallback): refused with
        the reason, after the same authorization a websocket would get."""
        self._authorize(call, "create", self._current(call))
        pod = self.service.get(call.target.kind, call.namespace, call.target.name)
        what = call.target.subresource
        if what != "portforward":
            container_of(pod, call.query("container"))  # what a websocket would be told first
        node_of(pod)
        raise ApiError(400, "BadRequest", f"{what} is served over websockets (v5.channel.k8s.io,"
                       " v4.channel.k8s.io; SPDY/3.1+portforward.k8s.io for port-forward), not "
                       "over a SPDY upgrade")  # fmt: skip

    async def get_scale(self, call: Call) -> Response:
        self._authorize(call, "get", self._current(call))
        target = call.target
        return json_response(self.scaling.get(target.kind, call.namespace, target.name))

    async def update_scale(self, call: Call) -> Response:
        body = await read_body(call.request)
        self._authorize(call, "update", self._current(call))
        target = call.target
        return json_response(self.scaling.update(target.kind, call.namespace, target.name, body))

    async def patch_scale(self, call: Call) -> Response:
        body = await read_body(call.request)
        self._authorize(call, "patch", self._current(call))
        target, content_type = call.target, _content_type(call.request)
        return json_response(self.scaling.patch(target.kind, call.namespace, target.name,
                                                content_type, body))  # fmt: skip

    async def create(self, call: Call) -> Response:
        body = await read_body(call.request)
        bound = body if isinstance(body, dict) else None
        meta = (bound or {}).get("metadata")
        named = str(meta.get("name") or "") if isinstance(meta, dict) else ""
        self._authorize(call, "create", bound, named)
        created = self.service.create(call.target.kind, call.namespace, body, call.strict)
        return json_response(created, 201)

    async def update(self, call: Call) -> Response:
        body = await read_body(call.request)
        self._authorize(call, "update", self._current(call))
        target = call.target
        return json_response(self.service.update(target.kind, call.namespace, target.name, body,
                                                 target.subresource, call.strict))  # fmt: skip

    async def patch(self, call: Call) -> Response:
        body = await read_body(call.request)
        self._authorize(call, "patch", self._current(call))
        target = call.target
        content_type = _content_type(call.request)
        obj, created = self.service.patch(
            target.kind, call.namespace, target.name, content_type, body, target.subresource,
            call.strict, call.query("fieldManager"), call.query("force") == "true",
        )  # fmt: skip
        return json_response(obj, 201 if created else 200)

    async def delete(self, call: Call) -> Response:
        self._authorize(call, "delete", self._current(call))
        options = await delete_options(call.request)
        dry = options.get("dryRun") or []
        if dry:  # kubectl puts it in the DeleteOptions, not the query
            DRY_RUN.set(dry_run(dry if isinstance(dry, list) else [str(dry)]))
        policy = str(options.get("propagationPolicy") or call.query("propagationPolicy"))
        wanted = options.get("preconditions")
        preconditions = wanted if isinstance(wanted, dict) else None
        target = call.target
        removed = self.service.delete(target.kind, call.namespace, target.name, policy,
                                      preconditions)  # fmt: skip
        return json_response(removed)

    async def delete_collection(self, call: Call) -> Response:
        self._authorize(call, "deletecollection", None)
        kind = call.target.kind
        scope = call.target.namespace if kind.namespaced else None
        items, rv, _ = self.service.list_items(kind, scope, list_options(call.request, kind, None))
        for item in items:
            meta = item["metadata"]
            try:
                self.service.delete(kind, meta.get("namespace", ""), meta["name"])
            except ApiError as exc:
                if exc.code != 404:
                    raise
        return json_response({"kind": kind.list_kind, "apiVersion": kind.api_version,
                              "metadata": {"resourceVersion": rv}, "items": items})  # fmt: skip

    def _watch(self, call: Call, watch: WatchRequest) -> Response:
        version = watch.resource_version
        if version not in ("", "0") and not self.service.valid_version(version):
            raise errors.bad_request(f"invalid resourceVersion {version!r}")
        as_table, kind = wants_table(call.request), watch.kind
        events = self.service.watch(watch)

        async def stream() -> AsyncIterator[bytes]:
            try:
                async for event_type, obj in events:
                    if as_table and event_type in ("ADDED", "MODIFIED", "DELETED"):
                        obj = table(kind, [obj], obj["metadata"].get("resourceVersion", ""))
                    yield orjson.dumps({"type": event_type, "object": obj}) + b"\n"
            except ApiError as exc:  # the response has started: errors travel as ERROR events
                yield orjson.dumps({"type": "ERROR", "object": exc.status()}) + b"\n"
            except Exception as exc:  # noqa: BLE001 - one broken watch, not the server
                log.exception("watch on %s failed", kind.key)
                error = ApiError(500, "InternalError", f"watch failed: {exc!r}")
                yield orjson.dumps({"type": "ERROR", "object": error.status()}) + b"\n"

        return StreamingResponse(stream(), media_type="application/json")


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip()


def _watch_seconds(call: Call) -> float:
    raw = call.request.query_params.get("timeoutSeconds")
    if raw is not None and not re.fullmatch(r"[0-9]{1,10}", raw):
        raise errors.bad_request(f"timeoutSeconds: {raw!r} is not a whole number of seconds")
    return min(float(raw or DEFAULT_WATCH_TIMEOUT), MAX_WATCH_TIMEOUT)
