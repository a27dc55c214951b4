"""Edge HTTP API (FastAPI): twin queries, edge-local desired writes, health and metrics.

Every error is JSON `{code, reason}`; the body of a write is limited to 64 KiB and must match the
schema, so nothing a client sends reaches the twin service unchecked.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field, StrictStr
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from devicetwin.model import Device, DeviceId, Twin, TwinValue, Version, device_id
from devicetwin.payloads import MAX_PAYLOAD
from devicetwin.rules import TwinError, sync_reason
from devicetwin.service import TwinService
from edgecore.eventbus import EventBus
from edgecore.metrics import EdgeMetrics
from kedge.logs import Throttle
from kedge.process import write_private

log = logging.getLogger("kedge.api")
JSON = dict[str, Any]
PUBLIC = frozenset({"/healthz", "/docs", "/openapi.json"})  # no token asked


class VersionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cloud: int = Field(ge=0)
    edge: int = Field(ge=0)


class DesiredBody(BaseModel):
    """Edge-local desired value; `version` makes it a compare-and-set (409 if stale)."""

    model_config = ConfigDict(extra="forbid")
    value: StrictStr
    version: VersionBody | None = None


def _side(value: TwinValue | None, version: Version | None) -> JSON | None:
    if value is None:
        return None
    out: JSON = {"value": value.value, "timestamp": value.timestamp}
    if version is not None:
        out["version"] = version.to_json()
    return out


def twin_json(device: Device, twin: Twin) -> JSON:
    prop = device.properties.get(twin.name)
    return {
        "propertyName": twin.name,
        "type": twin.type,
        "optional": twin.optional,
        "accessMode": prop.access_mode if prop else "ReadWrite",
        "unit": prop.unit if prop else "",
        "desired": _side(twin.expected, twin.expected_version),
        "reported": _side(twin.actual, twin.actual_version),
        "observedDesired": _side(twin.observed_desired, None),
        "inSync": not twin.has_delta(),
        "reason": sync_reason(twin),  # why desired is not reached ("" when it is)
        "error": twin.error,  # why the mapper cannot serve the property ("" when it can)
        "overruled": _side(twin.overruled, None),  # a cloud value the edge's own write beat
    }


def device_json(device: Device) -> JSON:
    return {
        "id": device.id,
        "namespace": device.namespace,
        "name": device.name,
        "description": device.description,
        "protocol": device.protocol,
        "model": device.spec.get("model", ""),
        "state": device.state,
        "lastOnlineTime": device.last_online,
        "attributes": device.attributes,
        "twins": [twin_json(device, t) for t in device.twins.values() if not t.deleted],
    }


def _error(code: int, reason: str) -> JSONResponse:
    return JSONResponse({"code": code, "reason": reason}, status_code=code)


class _Guard:
    """ASGI middleware: the bearer token (when the API wants one) and the body limit, enforced
    while the body is read (a client announcing or sending more is refused at once, before any
    of it is buffered)."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if self.token is not None and scope.get("path") not in PUBLIC:
            given = headers.get(b"authorization", b"").decode(errors="replace")
            if not secrets.compare_digest(given, f"Bearer {self.token}"):
                await _error(401, "a bearer token is required (STATE_DIR/http-token)")(
                    scope, receive, send
                )
                return
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > MAX_PAYLOAD:
            await _error(413, f"body is {int(length)} bytes; the limit is {MAX_PAYLOAD}")(
                scope, receive, send
            )
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > MAX_PAYLOAD:
                raise HTTPException(413, f"body is over the limit of {MAX_PAYLOAD} bytes")
            return message

        await self.app(scope, limited, send)


def http_token(state_dir: Path) -> str:
    """The edge API's bearer token (`STATE_DIR/http-token`, 0600), made on first use."""
    path = state_dir / "http-token"
    if not path.exists():
        write_private(path, secrets.token_urlsafe(32))
    return path.read_text().strip()


Failing = Callable[[], dict[str, str]]


def create_app(
    service: TwinService,
    bus: EventBus,
    metrics: EdgeMetrics,
    token: str | None = None,
    failing: Failing = dict,
    extra: tuple[APIRouter, ...] = (),
) -> FastAPI:
    """`failing()`: supervised tasks that failed lately (they make /healthz say degraded);
    `extra`: more routes (the DMI mapper view)."""
    app = FastAPI(title="kedge edgecore", version="0.1.0")
    app.add_middleware(_Guard, token=token)
    _error_handlers(app, service.node)
    app.include_router(_health(service, bus, metrics, failing))
    app.include_router(_twins(service, bus, metrics))
    for router in extra:
        app.include_router(router)
    return app


def _error_handlers(app: FastAPI, node: str) -> None:
    """Every error as `{code, reason}`; refusals logged at most every 10 s per client."""
    refusals = Throttle()

    @app.exception_handler(TwinError)
    async def twin_error(request: Request, exc: TwinError) -> JSONResponse:
        client = request.client.host if request.client else "?"
        held = refusals.allow(client)
        if held is not None:
            log.info("request refused: %s", exc.reason, extra={"node": node,
                     "client": client, "code": exc.code, "held_back": held})  # fmt: skip
        return _error(exc.code, exc.reason)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        return _error(422, problems or "invalid request")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("request failed", extra={"node": node, "path": request.url.path})
        return _error(500, f"internal error: {type(exc).__name__}")

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))


def _health(service: TwinService, bus: EventBus, metrics: EdgeMetrics, failing: Failing
            ) -> APIRouter:  # fmt: skip
    router = APIRouter()

    @router.get("/healthz")
    async def healthz() -> JSONResponse:
        connected, failed = bus.connected.is_set(), failing()
        ok = connected and not failed
        body = {
            "status": "ok" if ok else "degraded",
            "node": service.node,
            "mqttConnected": connected,
            "devices": len(service.devices),
            "failingTasks": failed,
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    @router.get("/metrics")
    async def prometheus() -> Response:
        metrics.devices.set(len(service.devices))
        commits, rows = service.store_stats
        metrics.store_commits.set(commits)
        metrics.store_rows.set(rows)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router


def _find(service: TwinService, namespace: str, name: str) -> Device:
    device = service.devices.get(device_id(namespace, name))
    if device is None:
        raise TwinError(404, f"device {namespace}/{name} is not bound to node {service.node}")
    return device


def _find_twin(device: Device, prop: str) -> Twin:
    twin = device.twins.get(prop)
    if twin is None or twin.deleted:
        raise TwinError(404, f"device {device.id} has no property {prop!r}")
    return twin


def _twins(service: TwinService, bus: EventBus, metrics: EdgeMetrics) -> APIRouter:
    router = APIRouter(prefix="/v1/devices")

    @router.get("")
    async def list_devices() -> JSON:
        return {"node": service.node, "items": [device_json(d) for d in service.devices.values()]}

    @router.get("/{namespace}/{name}")
    async def get_device(namespace: str, name: str) -> JSON:
        return device_json(_find(service, namespace, name))

    @router.get("/{namespace}/{name}/twin")
    async def get_twins(namespace: str, name: str) -> JSON:
        device = _find(service, namespace, name)
        return {"id": device.id, "twins": device_json(device)["twins"]}

    @router.get("/{namespace}/{name}/twin/{prop}")
    async def get_twin(namespace: str, name: str, prop: str) -> JSON:
        device = _find(service, namespace, name)
        return twin_json(device, _find_twin(device, prop))

    @router.put("/{namespace}/{name}/twin/{prop}/desired")
    async def put_desired(namespace: str, name: str, prop: str, body: DesiredBody) -> JSON:
        version = None if body.version is None else Version(body.version.cloud, body.version.edge)
        try:
            twin, events = await service.set_desired(
                DeviceId(f"{namespace}/{name}"), prop, body.value, version
            )
        except TwinError as exc:
            metrics.http_desired.labels(str(exc.code)).inc()
            raise
        metrics.http_desired.labels("200").inc()
        bus.publish(events)  # held while the broker is away; deltas are republished on connect
        return twin_json(service.devices[DeviceId(f"{namespace}/{name}")], twin)

    return router
