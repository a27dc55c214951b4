"""The hot API writes (device status, leases, node status, pod status, events) without the
official client's per-request machinery.

The official client builds every request through its model layer and runs synchronously, so
cloudcore ran it in worker threads: measured at about 0.5 ms of CPU per write before the thread
hop, several times that under load. Here a request is a pre-encoded body on a pooled keep-alive
aiohttp connection, on the event loop (about 0.25 ms; `bench/api_writes.py`). It takes its
server, TLS and credentials from the same `client.Configuration` the official client was loaded
with, and raises the official `ApiException` (status and reason), so callers handle errors one
way. Reads and watches stay with the official client.

Credentials: the kubeconfig loader's refresh hook (exec plugins, OIDC, rotated token files)
rebuilds the whole Configuration, proxies from the environment included; run per request it
took about a tenth of a busy cloudcore's CPU. It runs every REFRESH seconds, as the official
in-cluster loader re-reads its token each minute, and at once when the server answers 401
(the request then goes once more), as client-go does for expired exec credentials.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from kubernetes import client
from kubernetes.client.exceptions import ApiException

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
JSON = "application/json"
TIMEOUT = 30.0  # seconds per request, as the official client's default socket timeout
REFRESH = 60.0  # seconds between credential refreshes (and at once after a 401)


def _context(configuration: client.Configuration) -> ssl.SSLContext | bool:
    if not configuration.host.startswith("https"):
        return False
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
    if not configuration.verify_ssl:
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file)
    return context


def path_of(*parts: str) -> str:
    """`/apis/...` from path segments, each quoted (names come from outside)."""
    return "/" + "/".join(quote(part, safe="") if i else part for i, part in enumerate(parts))


class LeanApi:
    """One pooled session per process (create on the loop that uses it; `close` at the end)."""

    def __init__(self, configuration: client.Configuration, connections: int = 16) -> None:
        self.configuration = configuration
        self.base = configuration.host.rstrip("/")
        self._ssl = _context(configuration)
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None
        self._refresh_at = 0.0  # monotonic time of the next credential refresh

    def _headers(self, content_type: str, refresh: bool = False) -> dict[str, str]:
        configuration = self.configuration
        hook = configuration.refresh_api_key_hook
        if hook is not None and (refresh or time.monotonic() >= self._refresh_at):
            hook(configuration)
            self._refresh_at = time.monotonic() + REFRESH
        headers = {"Content-Type": content_type, "Accept": JSON}
        token = configuration.api_key.get("BearerToken")  # not get_api_key_with_prefix: it
        if token:  # runs the refresh hook on every call
            prefix = configuration.api_key_prefix.get("BearerToken")
            headers["Authorization"] = f"{prefix} {token}" if prefix else str(token)
        return headers

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._connections, ssl=self._ssl)
            timeout = aiohttp.ClientTimeout(total=TIMEOUT)
            self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)
        return self._session

    async def request(self, method: str, path: str, body: Any, content_type: str = JSON) -> bytes:
        """The answer's body; `ApiException` for an error status or an unreachable server."""
        data = body if isinstance(body, bytes) or body is None else orjson.dumps(body)
        response, answer = await self._send(method, path, data, self._headers(content_type))
        if response.status == 401 and self.configuration.refresh_api_key_hook is not None:
            headers = self._headers(content_type, refresh=True)  # expired: fresh credentials
            response, answer = await self._send(method, path, data, headers)
        if response.status >= 400:
            error = ApiException(status=response.status, reason=response.reason)
            error.body = answer
            raise error
        return answer

    async def _send(self, method: str, path: str, data: bytes | None, headers: dict[str, str]
                    ) -> tuple[aiohttp.ClientResponse, bytes]:  # fmt: skip
        try:
            async with self._open().request(
                method, self.base + path, data=data, headers=headers
            ) as response:
                return response, await response.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ApiException(status=0, reason=f"{method} {path}: {exc!r}") from exc

    async def lines(self, path: str) -> AsyncIterator[bytes]:
        """A watch's events, a JSON document per line, until the server ends the watch."""
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=TIMEOUT)
        try:
            async with self._open().get(
                self.base + path, headers=self._headers(JSON), timeout=timeout
            ) as response:
                if response.status >= 400:
                    error = ApiException(status=response.status, reason=response.reason)
                    error.body = await response.read()
                    raise error
                async for line in response.content:
                    if line.strip():
                        yield line
        except (aiohttp.ClientError, OSError) as exc:
            raise ApiException(status=0, reason=f"watch {path}: {exc!r}") from exc

    async def get(self, path: str) -> Any:
        return orjson.loads(await self.request("GET", path, None))

    async def replace(self, path: str, body: Any) -> bytes:
        return await self.request("PUT", path, body)

    async def patch(self, path: str, body: Any, content_type: str = MERGE) -> bytes:
        return await self.request("PATCH", path, body, content_type)

    async def create(self, path: str, body: Any) -> bytes:
        return await self.request("POST", path, body)

    async def delete(self, path: str, body: Any) -> bytes:
        return await self.request("DELETE", path, body)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
