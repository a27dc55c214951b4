"""Node certificates: the join service (port 10002) and rotation over the channel.

Join, as KubeEdge's: the edge fetches `GET /ca.crt` (unverified; it checks the CA's hash against
its token), then `POST /edge.crt` with `Authorization: Bearer <token>` and a CSR for
`CN=system:node:<node>`; the answer is the node's certificate. A connected node rotates its
certificate by sending a CSR over CloudHub (its current certificate authenticates it), so no
token is needed again unless the certificate was allowed to expire.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cloudcore.pki import CsrError, read_node_csr, sign_node_csr
from cloudcore.tokens import JoinTokens, TokenError
from kedge.channel.message import Message, Op
from kedge.channel.routes import CLOUD

log = logging.getLogger("kedge.join")
MAX_CSR = 16 * 1024


def _error(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"code": status, "reason": reason}, status_code=status)


NodeExists = Callable[[str], Awaitable[bool]]


async def _unknown(_node: str) -> bool:
    return False


class NodeCertificates:
    def __init__(
        self,
        pki: Path,
        tokens: JoinTokens,
        validity: datetime.timedelta,
        node_exists: NodeExists = _unknown,
    ) -> None:
        """`node_exists(name)`: whether the cluster has that Node (a token not made for a
        node may not take an existing one's name)."""
        self.pki, self.tokens, self.validity = pki, tokens, validity
        self.node_exists = node_exists

    async def _ca(self, _request: Request) -> Response:
        return Response((self.pki / "ca.crt").read_bytes(), media_type="application/x-pem-file")

    async def _join(self, request: Request) -> Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return _error(401, "a join token is required: Authorization: Bearer <token>")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_CSR:
                return _error(413, f"a CSR is at most {MAX_CSR} bytes")
        try:
            csr = read_node_csr(body)
        except CsrError as exc:
            return _error(400, str(exc))
        try:
            exists = self.tokens.joined(csr.node) or await self.node_exists(csr.node)
            self.tokens.check(token, csr.node, exists)
        except TokenError as exc:
            log.warning("join refused: %s", exc, extra={"node": csr.node})
            return _error(403, str(exc))
        certificate = sign_node_csr(self.pki, csr, self.validity)
        log.info("node joined", extra={"node": csr.node})
        return Response(certificate, media_type="application/x-pem-file")

    def routes(self) -> list[Route]:
        return [
            Route("/ca.crt", self._ca, methods=["GET"]),
            Route("/edge.crt", self._join, methods=["POST"]),
        ]

    def rotate(self, node: str, message: Message) -> Message:
        """A connected node's CSR -> its new certificate, or an error response."""
        csr_pem = message.content.get("csr") if isinstance(message.content, dict) else None
        try:
            if not isinstance(csr_pem, str):
                raise CsrError("content.csr must be a PEM string")
            csr = read_node_csr(csr_pem.encode())
            if csr.node != node:
                raise CsrError(f"node {node!r} may not ask for {csr.node!r}'s certificate")
        except CsrError as exc:
            log.warning("certificate rotation refused: %s", exc, extra={"node": node})
            return message.reply(CLOUD, Op.RESPONSE, {"error": str(exc)})
        certificate = sign_node_csr(self.pki, csr, self.validity)
        log.info("node certificate rotated", extra={"node": node})
        return message.reply(CLOUD, Op.RESPONSE, {"certificate": certificate.decode()})
