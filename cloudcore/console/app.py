"""The console's HTTP server: the page, and the JSON it reads, all behind a bearer token.

    GET  /                                       the page (no data in it: it asks the API below)
    GET  /api/whoami                             {name, role}
    GET  /api/nodes | /api/devices               lists
    GET  /api/devices/{ns}/{name}                the device page's data
    GET  /api/devices/{ns}/{name}/live           the same, again at every change (NDJSON stream)
    GET  /api/devices/{ns}/{name}/events         its Events
    GET  /api/devices/{ns}/{name}/history        ?property=&since=&until=&step= (from its node)
    PUT  /api/devices/{ns}/{name}/desired/{prop} {"value": "24"}: admin only

The console reads and writes the cluster with its own kubeconfig; a console user can do no more
than their role allows here. Responses carry a strict Content-Security-Policy (scripts and
styles from this origin only), so a value a device reports can never run as script.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

import orjson
from aiohttp import web
from kubernetes.client.exceptions import ApiException

from cloudcore.console.access import ConsoleTokens, Role
from cloudcore.console.cluster import Cluster
from cloudcore.console.views import desired_patch

log = logging.getLogger("kedge.console")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")  # DNS-1123 subdomain
PROPERTY = re.compile(r"^[a-zA-Z0-9\-_.,:/@#]{1,128}$")  # KubeEdge's twin key rule
VALUE_MAX = 512  # KubeEdge's twin value limit
LIVE_MAX = 64  # live streams at once (each holds two API watches)
STATIC = {"/": ("index.html", "text/html"), "/console.js": ("console.js", "text/javascript"),
          "/console.css": ("console.css", "text/css")}  # fmt: skip
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
TOKENS = web.AppKey("tokens", ConsoleTokens)
CLUSTER = web.AppKey("cluster", Cluster)
STREAMS = web.AppKey("streams", set)


class BadInput(ValueError):
    """A request the console refuses (400) with this message."""


def problem(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _json(data: Any) -> web.Response:
    return web.Response(body=orjson.dumps(data), content_type="application/json")


def _api_error(exc: ApiException) -> web.Response:
    """The API server's refusal, said to the user (its message where it gave one)."""
    try:
        message = orjson.loads(exc.body or b"{}").get("message") or exc.reason
    except (orjson.JSONDecodeError, AttributeError):
        message = exc.reason
    if exc.status == 0:
        return problem(502, f"the Kubernetes API server is unreachable: {exc.reason}")
    return problem(exc.status if 400 <= exc.status < 600 else 502, str(message))


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Security headers everywhere; a valid token for everything under /api."""
    if request.path.startswith("/api/"):
        who = request.app[TOKENS].role(request.headers.get("Authorization"))
        if who is None:
            response: web.StreamResponse = problem(401, "a console or kubeconfig token is needed")
            response.headers["WWW-Authenticate"] = 'Bearer realm="kedge console"'
        else:
            request["who"] = who
            try:
                response = await handler(request)
            except ApiException as exc:
                response = _api_error(exc)
            except BadInput as exc:
                response = problem(400, str(exc))
    else:
        response = await handler(request)
    if not response.prepared:
        response.headers.update(HEADERS)
    return response


def _device(request: web.Request) -> tuple[str, str]:
    namespace, name = request.match_info["ns"], request.match_info["name"]
    if not NAME.match(namespace) or not NAME.match(name):
        raise BadInput("namespace and name must be DNS-1123 names")
    return namespace, name


async def static(request: web.Request) -> web.Response:
    filename, content_type = STATIC[request.path]
    body = resources.files("cloudcore.console").joinpath("static", filename).read_bytes()
    return web.Response(body=body, content_type=content_type, charset="utf-8")


async def whoami(request: web.Request) -> web.Response:
    name, role = request["who"]
    return _json({"name": name, "role": role.value})


async def nodes(request: web.Request) -> web.Response:
    return _json({"items": await request.app[CLUSTER].nodes()})


async def devices(request: web.Request) -> web.Response:
    return _json({"items": await request.app[CLUSTER].devices()})


async def device(request: web.Request) -> web.Response:
    return _json(await request.app[CLUSTER].detail(*_device(request)))


async def events(request: web.Request) -> web.Response:
    return _json({"items": await request.app[CLUSTER].events(*_device(request))})


async def history(request: web.Request) -> web.Response:
    namespace, name = _device(request)
    query = {k: v for k, v in request.query.items() if k in ("property", "since", "until", "step")}
    if not PROPERTY.match(query.get("property", "")):
        return problem(400, "property: a property name is needed")
    return _json(await request.app[CLUSTER].history(namespace, name, query))


async def live(request: web.Request) -> web.StreamResponse:
    """The device page's data now and after every change, one JSON document per line."""
    namespace, name = _device(request)
    streams = request.app[STREAMS]
    if len(streams) >= LIVE_MAX:
        return problem(429, f"{LIVE_MAX} live streams are open already; close a page")
    await request.app[CLUSTER].get_device(namespace, name)  # a 404 before the stream starts
    response = web.StreamResponse(headers={**HEADERS, "Content-Type": "application/x-ndjson"})
    await response.prepare(request)
    streams.add(response)
    try:
        async for detail in request.app[CLUSTER].follow(namespace, name):
            await response.write(orjson.dumps(detail) + b"\n")
    except ApiException as exc:  # the device deleted, the API server gone: said, then ended
        await response.write(orjson.dumps({"error": f"live updates ended: {exc.reason}"}) + b"\n")
    finally:
        streams.discard(response)
    return response


async def set_desired(request: web.Request) -> web.Response:
    namespace, name = _device(request)
    who, role = request["who"]
    if role is not Role.ADMIN:
        return problem(403, f"{who} is a viewer: setting desired values needs the admin role")
    prop = request.match_info["prop"]
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        return problem(400, f"the body is not JSON: {exc}")
    value = body.get("value") if isinstance(body, dict) else None
    if not PROPERTY.match(prop) or not isinstance(value, str) or len(value) > VALUE_MAX:
        return problem(400, f'the body must be {{"value": "<text of at most {VALUE_MAX}>"}}')
    cluster = request.app[CLUSTER]
    current = await cluster.get_device(namespace, name)
    writable = await cluster.writable(current, prop)
    if writable is not True:
        return problem(404 if writable is None else 409, f"{prop}: " + (
            "no such property" if writable is None else "the model makes it ReadOnly"))  # fmt: skip
    patch = desired_patch(current, prop, value)
    if patch is None:
        return problem(404, f"{prop}: the device does not list this property")
    await cluster.patch_device(namespace, name, patch)
    log.info("desired value set from the console", extra={"device": f"{namespace}/{name}",
             "property": prop, "user": who})  # fmt: skip
    return _json({"property": prop, "desired": value})


def build(tokens: ConsoleTokens, cluster: Cluster) -> web.Application:
    app = web.Application(middlewares=[guard], client_max_size=64 * 1024)
    app[TOKENS], app[CLUSTER], app[STREAMS] = tokens, cluster, set()
    for path in STATIC:
        app.router.add_get(path, static)
    device_path = "/api/devices/{ns}/{name}"
    app.router.add_get("/api/whoami", whoami)
    app.router.add_get("/api/nodes", nodes)
    app.router.add_get("/api/devices", devices)
    app.router.add_get(device_path, device)
    app.router.add_get(device_path + "/live", live)
    app.router.add_get(device_path + "/events", events)
    app.router.add_get(device_path + "/history", history)
    app.router.add_put(device_path + "/desired/{prop}", set_desired)
    return app
