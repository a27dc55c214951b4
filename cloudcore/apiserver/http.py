"""The HTTP surface: Kubernetes REST paths, discovery, authentication, Status errors; the verbs
on resource paths are in `verbs`."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketState

from cloudcore.apiserver import discovery
from cloudcore.apiserver.auth import Tokens, User
from cloudcore.apiserver.errors import ApiError
from cloudcore.apiserver.podlogs import NodeClient, node_of
from cloudcore.apiserver.service import (
    DRY_RUN,
    FIELD_MANAGER,
    FIELD_WARNINGS,
    ApiService,
    dry_run,
)
from cloudcore.apiserver.verbs import Verbs
from cloudcore.apiserver.wire import (
    check_accept,
    error_response,
    header_text,
    json_response,
    parse_path,
)
from kedge.remotecommand import PORT_FORWARD, choose

log = logging.getLogger("kedge.apiserver")
PUBLIC = frozenset({"/version", "/healthz", "/readyz", "/livez"})
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


class ApiServer:
    def __init__(self, service: ApiService, tokens: Tokens | None,
                 node_client: tuple[Path, Path] | None = None) -> None:  # fmt: skip
        """`node_client`: the certificate shown to nodes' stream endpoints (logs, exec)."""
        self.service, self.tokens = service, tokens
        self.nodes = NodeClient(node_client)
        self.verbs = Verbs(service, self.nodes)

    def app(self) -> Starlette:
        routes = [
            Route("/version", self.version),
            Route("/healthz", self.health),
            Route("/readyz", self.health),
            Route("/livez", self.health),
            Route("/api", self.api),
            Route("/apis", self.apis),
            Route("/api/{version}", self.group_version),
            Route("/apis/{group}", self.group),
            Route("/apis/{group}/{version}", self.group_version),
            Route("/openapi/v3", self.openapi_index),
            Route("/openapi/v3/{path:path}", self.openapi_document),
            Route("/openapi/v2", self.openapi_v2),
            WebSocketRoute(
                "/api/v1/namespaces/{namespace}/pods/{name}/{what:str}", self.pod_stream
            ),
            Route("/api/{version}/{rest:path}", self.resource, methods=_METHODS),
            Route("/apis/{group}/{version}/{rest:path}", self.resource, methods=_METHODS),
        ]
        return Starlette(routes=routes, middleware=[], exception_handlers={})

    def _user(self, request: Request | WebSocket) -> User:
        if self.tokens is None:
            return User("admin")  # --insecure: no authentication
        user = self.tokens.authenticate(request.headers.get("authorization"))
        if user is None:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        return user

    async def pod_stream(self, websocket: WebSocket) -> None:
        """`kubectl exec`, `attach` (websocket, v5/v4.channel.k8s.io) and `port-forward` (SPDY
        tunnelled in a websocket), relayed to the pod's node. Nodes may not open them at all
        (as Kubernetes' Node authorizer forbids it)."""
        params = websocket.path_params
        what = params["what"]
        try:
            if what not in ("exec", "attach", "portforward"):
                raise ApiError(404, "NotFound", f"pods/{what} is not served over websockets")
            user = self._user(websocket)
            if user.node is not None:
                raise ApiError(403, "Forbidden", f'User "{user.name}" cannot create resource '
                               f'"pods/{what}"')  # fmt: skip
            kind = self.service.registry.find("", "v1", "pods")
            assert kind is not None
            pod = self.service.get(kind, params["namespace"], params["name"])
            node = self.service.store.get("/nodes", "", node_of(pod))
            offered = list(websocket.scope.get("subprotocols") or [])
            protocol = choose(offered) if what != "portforward" else (
                PORT_FORWARD if PORT_FORWARD in offered else None)  # fmt: skip
            if protocol is None:
                raise ApiError(400, "BadRequest", f"{what}: none of the offered protocols "
                               f"{offered} is served")  # fmt: skip
            await self.nodes.pod_command(websocket, what, pod, node, protocol)
        except ApiError as exc:
            log.info("%s refused: %s", what, exc.message, extra={"pod": params.get("name")})
            if websocket.client_state == WebSocketState.CONNECTING:
                try:
                    await websocket.send_denial_response(error_response(exc))
                except RuntimeError:  # a server without denial responses: a bare refusal
                    await websocket.close(code=1008)

    async def version(self, _request: Request) -> Response:
        return json_response(discovery.VERSION)

    async def health(self, _request: Request) -> Response:
        return Response("ok", media_type="text/plain")

    async def _guarded(
        self, request: Request, handler: Callable[[User], Awaitable[Response]]
    ) -> Response:
        try:
            return await handler(self._user(request))
        except ApiError as exc:
            return error_response(exc)
        except Exception as exc:  # noqa: BLE001 - a bug answers 500, the server keeps serving
            log.exception("internal error on %s %s", request.method, request.url.path)
            return error_response(
                ApiError(500, "InternalError", f"an error on the server: {exc!r}")
            )

    async def api(self, request: Request) -> Response:
        async def handle(_user: User) -> Response:
            return json_response(discovery.api_versions())

        return await self._guarded(request, handle)

    async def apis(self, request: Request) -> Response:
        async def handle(_user: User) -> Response:
            return json_response(discovery.api_groups(self.service.registry))

        return await self._guarded(request, handle)

    async def group(self, request: Request) -> Response:
        async def handle(_user: User) -> Response:
            document = discovery.api_group(self.service.registry, request.path_params["group"])
            if document is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return json_response(document)

        return await self._guarded(request, handle)

    async def group_version(self, request: Request) -> Response:
        async def handle(_user: User) -> Response:
            group = request.path_params.get("group", "")
            document = discovery.resource_list(
                self.service.registry, group, request.path_params["version"]
            )
            if document is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return json_response(document)

        return await self._guarded(request, handle)

    async def openapi_index(self, request: Request) -> Response:
        async def handle(_user: User) -> Response:
            return json_response(discovery.openapi_index(self.service.registry))

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
            return json_response(document)

        return await self._guarded(request, handle)

    async def openapi_v2(self, _request: Request) -> Response:
        return error_response(
            ApiError(404, "NotFound", "OpenAPI v2 is not served; use /openapi/v3")
        )

    async def resource(self, request: Request) -> Response:
        async def handle(user: User) -> Response:
            params = request.path_params
            check_accept(request)
            target = parse_path(
                self.service.registry, params.get("group", ""), params["version"], params["rest"]
            )
            warnings: list[str] = []
            token = FIELD_WARNINGS.set(warnings)
            agent = request.headers.get("user-agent", "").split("/")[0].strip() or "unknown"
            manager = FIELD_MANAGER.set(request.query_params.get("fieldManager") or agent)
            dry = DRY_RUN.set(dry_run(request.query_params.getlist("dryRun")))
            try:
                response = await self.verbs(request, user, target)
            finally:
                FIELD_WARNINGS.reset(token)
                FIELD_MANAGER.reset(manager)
                DRY_RUN.reset(dry)
            if request.query_params.get("fieldValidation") != "Ignore":
                for warning in warnings:  # fieldValidation=Warn, the default
                    response.headers.append("Warning", f'299 - "{header_text(warning)}"')
            return response

        return await self._guarded(request, handle)
