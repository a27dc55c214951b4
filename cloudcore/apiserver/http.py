"""The HTTP surface: Kubernetes REST paths, discovery, authentication, Status errors; the verbs
on resource paths are in `verbs`."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cloudcore.apiserver import discovery
from cloudcore.apiserver.auth import Tokens, User
from cloudcore.apiserver.errors import ApiError
from cloudcore.apiserver.service import (
    DRY_RUN,
    FIELD_MANAGER,
    FIELD_WARNINGS,
    ApiService,
    dry_run,
)
from cloudcore.apiserver.verbs import Verbs
from cloudcore.apiserver.wire import error_response, header_text, json_response, parse_path

log = logging.getLogger("kedge.apiserver")
PUBLIC = frozenset({"/version", "/healthz", "/readyz", "/livez"})
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


class ApiServer:
    def __init__(self, service: ApiService, tokens: Tokens | None) -> None:
        self.service, self.tokens = service, tokens
        self.verbs = Verbs(service)

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
