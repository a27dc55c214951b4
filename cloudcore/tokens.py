"""Join tokens: `<sha256 of the CA>.<HS256 JWT>`, as KubeEdge's (`pkg/security/token`).

The hash lets a joining edge check that the join service it reached serves the CA the token was
made for; the JWT (signed with a key derived from the CA's private key) says until when the
token is good and, optionally, which node may use it. A token joins one node: its first use
binds it to that node (recorded durably), so the same node may join again with it (after losing
its certificate) but another node may not.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime
import hashlib
import hmac
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from kedge.certs import ca_hash, node_name_problem
from kedge.sqlite import open_store

SCHEMA = """
CREATE TABLE IF NOT EXISTS used_tokens (
    jti TEXT PRIMARY KEY,
    node TEXT NOT NULL,
    expires INTEGER NOT NULL
)
"""
TOKENS_DB = "tokens.db"
DEFAULT_TTL = datetime.timedelta(hours=24)  # KubeEdge: 2 x tokenRefreshDuration (12 h)
HEADER = {"alg": "HS256", "typ": "JWT"}


class TokenError(ValueError):
    """A token the join service refuses; the message tells the user what to do."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class JoinTokens:
    """Makes and checks join tokens for the CA in `pki` (ca.crt, ca.key)."""

    def __init__(self, pki: Path, used: Path) -> None:
        self.hash = ca_hash((pki / "ca.crt").read_bytes())
        self._secret = hashlib.sha256(
            b"kedge join token\0" + (pki / "ca.key").read_bytes()
        ).digest()
        self._db = open_store(used, SCHEMA)

    def close(self) -> None:
        self._db.close()

    def _sign(self, signing_input: str) -> str:
        return _b64(hmac.digest(self._secret, signing_input.encode(), "sha256"))

    def create(
        self, ttl: datetime.timedelta = DEFAULT_TTL, node: str | None = None, rejoin: bool = False
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iat": now, "exp": now + int(ttl.total_seconds()), "jti": secrets.token_hex(16),
        }  # fmt: skip
        if node:
            claims["node"] = node
        elif rejoin:
            claims["rejoin"] = True
        signing_input = f"{_b64(orjson.dumps(HEADER))}.{_b64(orjson.dumps(claims))}"
        return f"{self.hash}.{signing_input}.{self._sign(signing_input)}"

    def joined(self, node: str) -> bool:
        """Whether a token (not yet expired) was used by `node`."""
        row = self._db.execute("SELECT 1 FROM used_tokens WHERE node = ?", (node,)).fetchone()
        return row is not None

    def check(self, token: str, node: str, exists: bool = False) -> None:
        """Accept `token` for `node` (and bind it to that node) or raise TokenError. A token not
        made for a node joins only new ones: taking an `exists`ing node's name (its identity,
        its pods and Secrets) needs a token made for it, or one made with --allow-rejoin."""
        parts = token.strip().split(".")
        if len(parts) != 4:
            raise TokenError("the join token is malformed (expected <ca-hash>.<jwt>)")
        pinned, header, payload, signature = parts
        if not hmac.compare_digest(pinned, self.hash):
            raise TokenError("the join token was made for another cloud's CA")
        if not hmac.compare_digest(signature, self._sign(f"{header}.{payload}")):
            raise TokenError("the join token's signature is invalid (forged or altered)")
        try:
            claims = orjson.loads(_unb64(payload))
            expires, jti = int(claims["exp"]), str(claims["jti"])
        except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError) as exc:
            raise TokenError(f"the join token's claims are unreadable: {exc}") from exc
        if expires <= time.time():
            when = datetime.datetime.fromtimestamp(expires, datetime.UTC).isoformat()
            raise TokenError(f"the join token expired at {when}; make a new one")
        bound = claims.get("node")
        if bound is not None and bound != node:
            raise TokenError(f"the join token is for node {bound!r}, not {node!r}")
        row = self._db.execute("SELECT node FROM used_tokens WHERE jti = ?", (jti,)).fetchone()
        if row is not None and row[0] != node:
            raise TokenError(
                f"the join token was already used by node {row[0]!r}; make a new one for {node!r}"
            )
        if bound is None and row is None and exists and claims.get("rejoin") is not True:
            raise TokenError(
                f"node {node!r} exists already; joining as it needs a token made with "
                f"--node {node} (or --allow-rejoin)"
            )
        self._db.execute(
            "INSERT OR IGNORE INTO used_tokens (jti, node, expires) VALUES (?, ?, ?)",
            (jti, node, expires),
        )
        self._db.execute("DELETE FROM used_tokens WHERE expires < ?", (int(time.time()),))


def create_token(args: argparse.Namespace) -> int:
    """`kedge token create`: print a join token for the cloudcore whose state dir is given."""
    pki = args.state_dir / "pki"
    if not (pki / "ca.key").exists():
        print(f"kedge token create: no CA in {pki}; start cloudcore with --state-dir "  # noqa: T201
              f"{args.state_dir} first", file=sys.stderr)  # fmt: skip
        return 2
    problem = node_name_problem(args.node) if args.node else None
    if problem is not None:
        print(f"kedge token create: --node: {problem}", file=sys.stderr)  # noqa: T201
        return 2
    tokens = JoinTokens(pki, args.state_dir / TOKENS_DB)
    try:
        print(tokens.create(args.ttl, args.node, args.allow_rejoin))  # noqa: T201 - the output
    finally:
        tokens.close()
    return 0
