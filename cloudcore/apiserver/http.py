"""The HTTP surface: Kubernetes REST paths, content negotiation, watch streams, Status errors."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from cloudcore.apiserver import bodies, discovery, errors
from cloudcore.apiserver.auth import FILTERED_KEYS, Tokens, User, allowed
from cloudcore.apiserver.auth import Request as AuthzRequest
from cloudcore.apiserver.errors import ApiError
from cloudcore.apiserver.podlogs import pod_log
from cloudcore.apiserver.references import references
from cloudcore.apiserver.resources import ResourceType
from cloudcore.apiserver.selectors import (
    FieldRequirement,
    SelectorError,
    parse_fields,
    parse_labels,
)
from cloudcore.apiserver.service import (
    FIELD_MANAGER,
    FIELD_WARNINGS,
    RESOURCE_VERSION,
    ApiService,
    ListOptions,
)
from cloudcore.apiserver.tables import TABLE_CONTENT_TYPE, table

log = logging.getLogger("kedge.apiserver")
MAX_BODY = bodies.MAX_BODY
DEFAULT_WATCH_TIMEOUT = 1800.0
MAX_WATCH_TIMEOUT = 3600.0  # a watch asking for longer ends then (clients re-watch)
PUBLIC = frozenset({"/version", "/healthz", "/readyz", "/livez"})
Handler = Callable[[Request], Awaitable[Response]]


def _json(body: Any, code: int = 200, content_type: str = "application/json") -> Response:
    return Response(orjson.dumps(body), code, media_type=content_type)


def _error(error: ApiError) -> Response:
    return _json(error.status(), error.code)


@dataclass(frozen=True, slots=True)
class Target:
    kind: ResourceType
    namespace: str | None
    name: str
    subresource: str


def _parse_path(service: ApiService, group: str, version: str, rest: str) -> Target:
    parts = [p for p in rest.split("/") if p]
    namespace: str | None = None
    if (
        len(parts) >= 3
        and parts[0] == "namespaces"
        and not (len(parts) == 3 and parts[2] in ("status", "finalize"))
    ):
        namespace, parts = parts[1], parts[2:]
    if not parts or len(parts) > 3:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    kind = service.registry.find(group, version, parts[0])
    if kind is None or (namespace is not None and not kind.namespaced):
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    name = parts[1] if len(parts) > 1 else ""
    subresource = parts[2] if len(parts) > 2 else ""
    finalize = kind.key == "/namespaces" and subresource == "finalize"
    log_of_pod = kind.key == "/pods" and subresource == "log"
    if (
        subresource
        and (subresource != "status" or not kind.status)
        and not (finalize or log_of_pod)
    ):
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    if kind.namespaced and name and namespace is None:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    return Target(kind, namespace if kind.namespaced else "", name, subresource)


async def _body(request: Request) -> Any:
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
    if "protobuf" in content_type or "cbor" in content_type:
        raise ApiError(
            415, "UnsupportedMediaType", f"the body's content type {content_type} is not supported"
        )
    return bodies.decode(data, content_type)


def _wants_table(request: Request) -> bool:
    return "as=Table" in request.headers.get("accept", "")


def _options(request: Request, kind: ResourceType, node: str | None) -> ListOptions:
    query = request.query_params
    try:
        labels = parse_labels(query.get("labelSelector"))
        fields = parse_fields(query.get("fieldSelector"), kind.fields)
    except SelectorError as exc:
        raise errors.bad_request(f"unable to parse requirement: {exc}") from exc
    if node is not None and kind.key in FILTERED_KEYS:
        fields.append(FieldRequirement("spec.nodeName", True, node))  # a node sees its own
    limit = query.get("limit", "0")
    if not limit.isdigit():
        raise errors.bad_request(f"limit: {limit!r} is not a non-negative integer")
    return ListOptions(labels, fields, int(limit), query.get("continue", ""))


class ApiServer:
    def __init__(self, service: ApiService, tokens: Tokens | None) -> None:
        self.service, self.tokens = service, tokens

    def app(self) -> Starlette:
        routes = [
            Route("/version", self.version),
            Route("/healthz", self.health),
            Route("/readyz", self.health),
            Route("/livez", self.health),
            Route("/api", self.api),
            Route("/apis", self.apis),
            Route("/api/{version}", self.group_version),
            Route("/apis/{group}/{version}", self.group_version),
            Route("/openapi/v3", self.openapi_index),
            Route("/openapi/v3/{path:path}", self.openapi_document),
            Route("/openapi/v2", self.openapi_v2),
            Route("/api/{version}/{rest:path}", self.resource, methods=_METHODS),
            Route("/apis/{group}/{version}/{rest:path}", self.resource, methods=_METHODS),
        ]
        return Starlette(routes=routes, middleware=[], exception_handlers={})

    def _user(self, request: Request) -> User:
        if self.tokens is None:
            return User("admin")  # --insecure: no authentication
        user = self.tokens.authenticate(request.headers.get("authorization"))
        if user is None:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        return user

    async def version(self, _request: Request) -> Response:
        return _json(discovery.VERSION)

    async def health(self, _request: Request) -> Response:
        return Response("ok", media_type="text/plain")

    async def _guarded(
        self, request: Request, handler: Callable[[User], Awaitable[Response]]
    ) -> Response:
        try:
            return await handler(self._user(request))
        except ApiError as exc:
            return _error(exc)
        except Exception as exc:  # noqa: BLE001 - a bug answers 500, the server keeps serving
            log.exception("internal error on %s %s", request.method, request.url.path)
            return _error(ApiError(500, "InternalError", f"an error on the server: {exc!r}"))

    async def api(self, request: Request) -> Response:
        async def handle(_user: User) -> Response:
            return _json(discovery.api_versions())

        return await self._guarded(request, handle)

    async def apis(self, request: Request) -> Response:
        async def handle(_user: User) -> Response:
            return _json(discovery.api_groups(self.service.registry))

        return await self._guarded(request, handle)

    async def group_version(self, request: Request) -> Response:
        async def handle(_user: User) -> Response:
            group = request.path_params.get("group", "")
            document = discovery.resource_list(
                self.service.registry, group, request.path_params["version"]
            )
            if document is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return _json(document)

        return await self._guarded(request, handle)

    async def openapi_index(self, request: Request) -> Response:
        async def handle(_user: User) -> Response:
            return _json(discovery.openapi_index(self.service.registry))

        return await self._guarded(request, handle)

    async def openapi_document(self, request: Request) -> Response:
        async def handle(_user: User) -> Response:
            parts = request.path_params["path"].split("/")
            if parts[0] == "api" and len(parts) == 2:
                group, version = "", parts[1]
            elif parts[0] == "apis" and len(parts) == 3:
                group, version = parts[1], parts[2]
            else:
                raise ApiError(404, "NotFound", "no such OpenAPI document")
            document = discovery.openapi_document(self.service.registry, group, version)
            if document is None:
                raise ApiError(404, "NotFound", "no such OpenAPI document")
            return _json(document)

        return await self._guarded(request, handle)

    async def openapi_v2(self, _request: Request) -> Response:
        return _error(ApiError(404, "NotFound", "OpenAPI v2 is not served; use /openapi/v3"))

    async def resource(self, request: Request) -> Response:
        async def handle(user: User) -> Response:
            params = request.path_params
            target = _parse_path(
                self.service, params.get("group", ""), params["version"], params["rest"]
            )
            warnings: list[str] = []
            token = FIELD_WARNINGS.set(warnings)
            agent = request.headers.get("user-agent", "").split("/")[0].strip() or "unknown"
            manager = FIELD_MANAGER.set(request.query_params.get("fieldManager") or agent)
            try:
                response = await self._dispatch(request, user, target)
            finally:
                FIELD_WARNINGS.reset(token)
                FIELD_MANAGER.reset(manager)
            if request.query_params.get("fieldValidation") != "Ignore":
                for warning in warnings:  # fieldValidation=Warn, the default
                    response.headers.append("Warning", f'299 - "{_header_text(warning)}"')
            return response

        return await self._guarded(request, handle)

    def _authorize(
        self, user: User, verb: str, target: Target, bound: dict[str, Any] | None
    ) -> None:
        node = None
        if bound is not None and isinstance(bound.get("spec"), dict):
            node = bound["spec"].get("nodeName")
        namespace = target.namespace or ""
        request = AuthzRequest(
            verb, target.kind.key, namespace, target.name, target.subresource, node,
            lambda of: self._used_on(of, target.kind.key, namespace, target.name),
        )  # fmt: skip
        if not allowed(user, request):
            what = target.kind.plural + (f"/{target.subresource}" if target.subresource else "")
            raise ApiError(
                403,
                "Forbidden",
                f'{target.kind.plural} "{target.name}" is forbidden: User "{user.name}" cannot '
                f'{verb} resource "{what}" in API group "{target.kind.group}"'
                + (f' in the namespace "{target.namespace}"' if target.namespace else ""),
                {"name": target.name, "group": target.kind.group, "kind": target.kind.plural},
            )

    def _used_on(self, node: str, key: str, namespace: str, name: str) -> bool:
        """Whether a pod bound to `node` uses the Secret or ConfigMap `namespace/name`."""
        pods, _ = self.service.store.list("/pods", namespace)
        return any(
            (p.get("spec") or {}).get("nodeName") == node and (key, name) in references(p)
            for p in pods
        )

    def _current(self, user: User, target: Target) -> dict[str, Any] | None:
        """The stored object, needed to authorise a node (its spec.nodeName)."""
        if user.node is None or not target.name:
            return None
        return self.service.store.get(target.kind.key, target.namespace or "", target.name)

    async def _dispatch(self, request: Request, user: User, target: Target) -> Response:
        method, service, kind = request.method, self.service, target.kind
        namespace = target.namespace if target.namespace is not None else ""
        query = request.query_params
        strict = query.get("fieldValidation") == "Strict"
        if method == "GET" and not target.name:
            verb = "watch" if query.get("watch") in ("true", "1") else "list"
            self._authorize(user, verb, target, None)
            options = _options(request, kind, user.node)
            scope = target.namespace if kind.namespaced else None
            if verb == "watch":
                return self._watch(request, kind, scope, options)
            items, rv, token = service.list_items(kind, scope, options)
            if _wants_table(request):
                return _json(table(kind, items, rv, token), content_type=TABLE_CONTENT_TYPE)
            metadata: dict[str, Any] = {"resourceVersion": rv}
            if token:
                metadata["continue"] = token
            body = {
                "kind": kind.list_kind,
                "apiVersion": kind.api_version,
                "metadata": metadata,
                "items": items,
            }
            return _json(body)
        if method == "GET" and target.subresource == "log":
            self._authorize(user, "get", target, self._current(user, target))
            pod = service.get(kind, namespace, target.name)
            node_name = str((pod.get("spec") or {}).get("nodeName") or "")
            node = service.store.get("/nodes", "", node_name) if node_name else None
            return await pod_log(pod, node, query)
        if method == "GET":
            self._authorize(user, "get", target, self._current(user, target))
            obj = service.get(kind, namespace, target.name)
            if _wants_table(request):
                rv = obj["metadata"].get("resourceVersion", "")
                return _json(table(kind, [obj], rv), content_type=TABLE_CONTENT_TYPE)
            return _json(obj)
        if method == "POST" and not target.name:
            body = await _body(request)
            bound = body if isinstance(body, dict) else None
            meta = (bound or {}).get("metadata")
            named = str(meta.get("name") or "") if isinstance(meta, dict) else ""
            self._authorize(user, "create", dataclasses.replace(target, name=named), bound)
            return _json(service.create(kind, namespace, body, strict), 201)
        if method == "PUT" and target.name:
            body = await _body(request)
            self._authorize(user, "update", target, self._current(user, target))
            return _json(
                service.update(kind, namespace, target.name, body, target.subresource, strict)
            )
        if method == "PATCH" and target.name:
            body = await _body(request)
            self._authorize(user, "patch", target, self._current(user, target))
            content_type = request.headers.get("content-type", "").split(";")[0].strip()
            obj, created = service.patch(
                kind,
                namespace,
                target.name,
                content_type,
                body,
                target.subresource,
                strict,
                query.get("fieldManager", ""),
                query.get("force") == "true",
            )
            return _json(obj, 201 if created else 200)
        if method == "DELETE" and target.name:
            self._authorize(user, "delete", target, self._current(user, target))
            delete_options = await _delete_options(request)
            policy = str(
                delete_options.get("propagationPolicy") or query.get("propagationPolicy") or ""
            )
            preconditions = delete_options.get("preconditions")
            removed = service.delete(
                kind,
                namespace,
                target.name,
                policy,
                preconditions if isinstance(preconditions, dict) else None,
            )
            return _json(removed)
        if method == "DELETE":
            self._authorize(user, "deletecollection", target, None)
            items, rv, _ = service.list_items(
                kind, target.namespace if kind.namespaced else None, _options(request, kind, None)
            )
            for item in items:
                meta = item["metadata"]
                try:
                    service.delete(kind, meta.get("namespace", ""), meta["name"])
                except ApiError as exc:
                    if exc.code != 404:
                        raise
            return _json(
                {
                    "kind": kind.list_kind,
                    "apiVersion": kind.api_version,
                    "metadata": {"resourceVersion": rv},
                    "items": items,
                }
            )
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on this path")

    def _watch(
        self, request: Request, kind: ResourceType, namespace: str | None, options: ListOptions
    ) -> Response:
        query = request.query_params
        raw = query.get("timeoutSeconds")
        if raw is not None and not re.fullmatch(r"[0-9]{1,10}", raw):
            raise errors.bad_request(f"timeoutSeconds: {raw!r} is not a whole number of seconds")
        timeout = min(float(raw or DEFAULT_WATCH_TIMEOUT), MAX_WATCH_TIMEOUT)
        version = query.get("resourceVersion", "")
        if version not in ("", "0") and not RESOURCE_VERSION.fullmatch(version):
            raise errors.bad_request(f"invalid resourceVersion {version!r}")
        as_table = _wants_table(request)
        events = self.service.watch(
            kind,
            namespace,
            options,
            query.get("resourceVersion", ""),
            query.get("allowWatchBookmarks") in ("true", "1"),
            timeout,
            query.get("sendInitialEvents") == "true",
        )

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


_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def _header_text(text: str) -> str:
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


async def _delete_options(request: Request) -> dict[str, Any]:
    """DeleteOptions from the body, if any (kubectl sends propagationPolicy there)."""
    try:
        body = await _body(request)
    except ApiError as exc:
        if exc.code == 400 and "no body" in exc.message:
            return {}
        raise
    if not isinstance(body, dict):
        raise errors.bad_request("DeleteOptions must be an object")
    return body
