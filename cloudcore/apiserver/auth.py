"""Bearer-token authentication and authorisation (an admin, and nodes limited to their own).

Tokens live in `<state>/tokens.json` ({token: user}); the admin token is made at first start.
A node identity (`system:node:<name>`) may, like Kubernetes' Node authorizer with
NodeRestriction: read and write its own Node and its Lease in kube-node-lease; read, list and
watch pods and devices and write their status; read device models, config maps, secrets and
namespaces; create events. Anything else is 403.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

ADMIN = "admin"
NODE_PREFIX = "system:node:"
_READ = frozenset({"get", "list", "watch"})


@dataclass(frozen=True, slots=True)
class User:
    name: str

    @property
    def node(self) -> str | None:
        return self.name.removeprefix(NODE_PREFIX) if self.name.startswith(NODE_PREFIX) else None


class Tokens:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._users: dict[str, str] = {}
        self._loaded = -1
        self._reload()
        if ADMIN not in self._users.values():
            self.issue(ADMIN)

    def _reload(self) -> None:
        """Tokens issued by other processes (e.g. a token command) count from the next request."""
        try:
            stamp = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return
        if stamp != self._loaded:
            self._users = {str(k): str(v) for k, v in json.loads(self.path.read_text()).items()}
            self._loaded = stamp

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_suffix(".tmp")
        temp.write_text(json.dumps(self._users, indent=1))
        os.chmod(temp, 0o600)
        temp.replace(self.path)
        self._loaded = self.path.stat().st_mtime_ns

    def issue(self, user: str) -> str:
        token = secrets.token_urlsafe(32)
        self._users[token] = user
        self._save()
        return token

    def token_for(self, user: str) -> str:
        existing = next((t for t, u in self._users.items() if u == user), None)
        return existing or self.issue(user)

    def authenticate(self, header: str | None) -> User | None:
        if not header or not header.startswith("Bearer "):
            return None
        token = header.removeprefix("Bearer ").strip()
        self._reload()
        for known, user in self._users.items():
            if secrets.compare_digest(known, token):
                return User(user)
        return None


def allowed(
    user: User,
    verb: str,
    key: str,
    namespace: str,
    name: str,
    subresource: str,
    bound_node: str | None,
) -> bool:
    """May `user` do `verb` on `key` (group/plural)? `bound_node` is the target object's
    spec.nodeName (or the new object's, for create), when it has one."""
    node = user.node
    if node is None:
        return user.name == ADMIN
    if key == "/nodes":
        return verb in _READ or name == node
    if key == "coordination.k8s.io/leases":
        return namespace == "kube-node-lease" and (name in (node, "") or verb in _READ)
    if key in ("/pods", "devices.kubeedge.io/devices"):
        if verb in ("list", "watch"):
            return True
        if verb == "get" or (subresource == "status" and verb in ("update", "patch")):
            return bound_node == node
        return False
    if key in ("devices.kubeedge.io/devicemodels", "/configmaps", "/secrets", "/namespaces"):
        return verb in _READ
    if key == "/events":
        return verb in ("create", "patch", "update") or verb in _READ
    return False
