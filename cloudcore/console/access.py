"""Who may use the console: bearer tokens with a role, `viewer` (read) or `admin` (also sets
desired values).

Console tokens are independent of nodes and of the API server's own tokens: `kedge console
token create --role viewer` prints one once; only its SHA-256 is kept, in
`<state>/console-tokens.json` (0600), so the file does not hand out access if read. The token of
the kubeconfig the console runs with is also accepted, as admin (whoever holds it is admin of
the cluster anyway). Tokens from another process count from the next request.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import secrets
from pathlib import Path

from kedge.process import write_private

FILE = "console-tokens.json"


class Role(enum.StrEnum):
    VIEWER = "viewer"
    ADMIN = "admin"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ConsoleTokens:
    def __init__(self, state: Path, kubeconfig_token: str | None = None) -> None:
        self.path = state / FILE
        self._admin = _digest(kubeconfig_token) if kubeconfig_token else None
        self._roles: dict[str, tuple[str, Role]] = {}  # digest -> (name, role)
        self._loaded = -1

    def _reload(self) -> None:
        try:
            stamp = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return
        if stamp == self._loaded:
            return
        entries = json.loads(self.path.read_text())
        self._roles = {d: (str(e["name"]), Role(e["role"])) for d, e in entries.items()}
        self._loaded = stamp

    def create(self, name: str, role: Role) -> str:
        """A new token (replacing one of the same name); only its digest is stored."""
        self._reload()
        token = "kc_" + secrets.token_urlsafe(32)
        kept = {d: e for d, e in self._roles.items() if e[0] != name}
        kept[_digest(token)] = (name, role)
        text = json.dumps({d: {"name": n, "role": r.value} for d, (n, r) in kept.items()}, indent=1)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_private(self.path, text)
        self._roles, self._loaded = kept, self.path.stat().st_mtime_ns
        return token

    def role(self, header: str | None) -> tuple[str, Role] | None:
        """(name, role) of an `Authorization: Bearer` header's token, or None."""
        if not header or not header.startswith("Bearer "):
            return None
        digest = _digest(header.removeprefix("Bearer ").strip())
        if self._admin is not None and hmac.compare_digest(digest, self._admin):
            return "kubeconfig", Role.ADMIN
        self._reload()
        return self._roles.get(digest)  # looked up by digest: no timing on the token itself
