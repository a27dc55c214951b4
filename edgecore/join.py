"""The edge's node certificate: joining with a token, and rotating it before it expires.

Join: fetch the cloud's CA from the join service without trusting it yet, compare its hash with
the one the token pins, then send a CSR (the key never leaves the node) with the token over TLS
verified against that CA. Rotation: at 80 % of the certificate's lifetime, a CSR goes over the
established channel and the answer replaces `node.crt`/`node.key`; the next connection uses it.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import ssl
from pathlib import Path

import httpx

from edgecore.hub import EdgeHub, client_context
from kedge.backoff import Backoff
from kedge.certs import ca_hash, expired, node_csr, node_of_certificate, rotation_due
from kedge.certs import write_private as write_file
from kedge.channel.message import Message
from kedge.channel.routes import certificate_request
from kedge.errors import PermanentError, TemporaryError

log = logging.getLogger("kedge.edgecore")
RETRY = 30.0  # seconds between rotation attempts that failed


class JoinError(PermanentError):
    """The cloud refused to let this node join, or is not the cloud the token was made for."""


class JoinUnreachable(TemporaryError):
    """The join service could not be reached (worth retrying)."""


def certificate_usable(certs: Path, node: str) -> bool:
    """A node certificate for `node` that has not expired is in `certs`."""
    crt = certs / "node.crt"
    if not (crt.exists() and (certs / "node.key").exists() and (certs / "ca.crt").exists()):
        return False
    try:
        pem = crt.read_bytes()
        client_context(certs / "ca.crt", crt, certs / "node.key")  # the key fits the certificate
        return node_of_certificate(pem) == node and not expired(pem)
    except (ValueError, ssl.SSLError):
        return False


def _refusal(response: httpx.Response) -> str:
    try:
        return str(response.json()["reason"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200] or f"HTTP {response.status_code}"


async def join(url: str, token: str, node: str, certs: Path) -> None:
    """Get a node certificate from the join service at `url` (https://host:10002)."""
    pinned = token.strip().split(".", 1)[0]
    try:
        async with httpx.AsyncClient(verify=False, timeout=10) as unverified:  # noqa: S501
            got = await unverified.get(f"{url}/ca.crt")  # trusted only once its hash matches
        got.raise_for_status()
        ca_pem = got.content
        try:
            actual = ca_hash(ca_pem)
        except ValueError as exc:
            raise JoinError(f"{url}/ca.crt is not a PEM certificate: {exc}") from exc
        if actual != pinned:
            raise JoinError(
                f"the CA at {url} (sha256 {actual[:16]}...) is not the one the token was made "
                "for: wrong cloud, or someone in between"
            )
        csr, key = node_csr(node)
        context = ssl.create_default_context(cadata=ca_pem.decode())
        async with httpx.AsyncClient(verify=context, timeout=10) as client:
            answer = await client.post(
                f"{url}/edge.crt", content=csr, headers={"Authorization": f"Bearer {token}"}
            )
    except httpx.HTTPError as exc:
        raise JoinUnreachable(f"join service {url}: {exc!r}") from exc
    if answer.status_code != 200:
        raise JoinError(f"the cloud refused to let {node} join: {_refusal(answer)}")
    write_file(certs / "ca.crt", ca_pem)
    write_file(certs / "node.key", key)
    write_file(certs / "node.crt", answer.content)
    log.info("joined the cloud", extra={"node": node, "join": url})


async def ensure_joined(url: str, token: str | None, node: str, certs: Path) -> None:
    """Join unless a usable certificate is there; retry while the service is unreachable."""
    backoff = Backoff(0.5, 30.0)
    while not certificate_usable(certs, node):
        if token is None:
            raise JoinError(f"no usable node certificate in {certs} and no join token to get one")
        try:
            await join(url, token, node, certs)
        except JoinUnreachable as exc:
            log.info("%s; retry in %.1fs", exc, backoff.upcoming, extra={"node": node})
            await backoff.pause()  # retry pacing


class Rotator:
    """Replaces the node certificate over the channel before it expires."""

    def __init__(self, hub: EdgeHub, node: str, certs: Path) -> None:
        self.hub, self.node, self.certs = hub, node, certs
        self._waiting: dict[str, asyncio.Future[Message]] = {}
        self.rotations = 0

    async def on_message(self, message: Message) -> None:
        waiter = self._waiting.pop(message.parent_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(message)

    async def run(self) -> None:
        """Until cancelled: wait for the due time, rotate, repeat."""
        while True:
            due = rotation_due((self.certs / "node.crt").read_bytes())
            wait = (due - datetime.datetime.now(datetime.UTC)).total_seconds()
            if wait > 0:
                await asyncio.sleep(wait)  # a timer: the certificate is not due before then
            await self.hub.connected.wait()
            try:
                await self.rotate()
            except (TimeoutError, JoinError) as exc:
                log.warning("certificate rotation failed: %s; retrying", exc,
                            extra={"node": self.node})  # fmt: skip
                await asyncio.sleep(RETRY)  # retry pacing

    async def rotate(self) -> None:
        csr, key = node_csr(self.node)
        request = certificate_request(self.node, csr.decode())
        waiter: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._waiting[request.msg_id] = waiter
        try:
            if not await self.hub.send(request):
                raise JoinError("the cloud is not connected")
            answer = await asyncio.wait_for(waiter, 30)
        finally:
            self._waiting.pop(request.msg_id, None)
        content = answer.content if isinstance(answer.content, dict) else {}
        certificate = content.get("certificate")
        try:
            issued = isinstance(certificate, str) and (
                node_of_certificate(certificate.encode()) == self.node
            )
        except ValueError:
            issued = False
        if not issued or not isinstance(certificate, str):
            raise JoinError(f"the cloud did not rotate the certificate: {content.get('error')}")
        write_file(self.certs / "node.key", key)
        write_file(self.certs / "node.crt", certificate.encode())
        self.hub.context = client_context(
            self.certs / "ca.crt", self.certs / "node.crt", self.certs / "node.key"
        )
        self.rotations += 1
        log.info("node certificate rotated", extra={"node": self.node})
