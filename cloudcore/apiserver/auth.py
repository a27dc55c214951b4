"""Bearer-token authentication and authorisation (an admin, and nodes limited to their own).

Tokens are kept as their SHA-256 in `<state>/tokens.json` ({digest: user}, 0600), so the file
hands out no access if read; a token is shown once, when issued. The admin's token lives only in
the kubeconfig the server writes (a credential file, as Kubernetes' admin.conf), and is reused
from there at every start.
A node identity (`system:node:<name>`) may what Kubernetes' Node authorizer and NodeRestriction
admission allow a kubelet, as each resource type's `node_access` says (`builtins.py`): its own
Node and Lease, the pods and devices bound to it (their status), the Secrets and ConfigMaps those
pods use (get only), device models, and events. Anything else is 403: other nodes' objects,
collection deletes, objects named by generateName, every Secret not referenced by its pods.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import yaml

from kedge.certs import write_private

ADMIN = "admin"
NODE_PREFIX = "system:node:"
LEASES = "kube-node-lease"


@dataclass(frozen=True, slots=True)
class User:
    name: str

    @property
    def node(self) -> str | None:
        return self.name.removeprefix(NODE_PREFIX) if self.name.startswith(NODE_PREFIX) else None


_DIGEST = re.compile(r"^[0-9a-f]{64}\Z")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Tokens:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._users: dict[str, str] = {}  # token digest -> user
        self._loaded = -1
        self._reload()

    def _reload(self) -> None:
        """Tokens issued by other processes (e.g. a token command) count from the next request.
        A file from before digests (tokens in clear) is rewritten with digests."""
        try:
            stamp = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return
        if stamp != self._loaded:
            raw = {str(k): str(v) for k, v in json.loads(self.path.read_text()).items()}
            self._users = {k if _DIGEST.match(k) else _digest(k): v for k, v in raw.items()}
            self._loaded = stamp
            if set(raw) != set(self._users):
                self._save()

    def _save(self) -> None:
        write_private(self.path, json.dumps(self._users, indent=1).encode())
        self._loaded = self.path.stat().st_mtime_ns

    def issue(self, user: str) -> str:
        """A new token for `user`: returned once, kept only as its digest."""
        token = secrets.token_urlsafe(32)
        self._users[_digest(token)] = user
        self._save()
        return token

    def admin_token(self, kubeconfig: Path) -> str:
        """The admin token the kubeconfig already holds, else a new one."""
        try:
            config = yaml.safe_load(kubeconfig.read_text())
            token = str(config["users"][0]["user"]["token"])
        except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError):
            return self.issue(ADMIN)
        return token if self._users.get(_digest(token)) == ADMIN else self.issue(ADMIN)

    def authenticate(self, header: str | None) -> User | None:
        if not header or not header.startswith("Bearer "):
            return None
        self._reload()
        user = self._users.get(_digest(header.removeprefix("Bearer ").strip()))
        return None if user is None else User(user)


class Rule(Enum):
    """What a node identity needs of the object for a verb to be allowed."""

    ANY = "any object"
    OWN_NAME = "its own Node"
    OWN_LEASE = "its own Lease in kube-node-lease"
    BOUND = "objects bound to it (spec.nodeName)"
    FILTERED = "the collection, filtered to its own objects by the server"
    REFERENCED = "objects that pods bound to it use"


@dataclass(frozen=True, slots=True)
class Request:
    """One request as the authorizer sees it. `name` is the target's (for a create, the new
    object's metadata.name); `bound_node` the target object's spec.nodeName; `referenced()`
    whether a pod bound to the node uses the target (asked only when a rule needs it)."""

    verb: str
    key: str
    namespace: str
    name: str
    subresource: str = ""
    bound_node: str | None = None
    referenced: Callable[[str], bool] = lambda _node: False


def allowed(user: User, request: Request, node_access: Mapping[str, Rule]) -> bool:
    """May `user` make `request` of a type with `node_access`? The admin may do anything; a node
    what the type's table says."""
    node = user.node
    if node is None:
        return user.name == ADMIN
    verb = f"{request.verb}:{request.subresource}" if request.subresource else request.verb
    rule = node_access.get(verb)
    if rule is None:
        return False
    if rule in (Rule.ANY, Rule.FILTERED):  # FILTERED: the server adds spec.nodeName=<node>
        return True
    if rule is Rule.OWN_NAME:
        return request.name == node
    if rule is Rule.OWN_LEASE:
        return request.namespace == LEASES and request.name == node
    if rule is Rule.BOUND:
        return bool(request.name) and request.bound_node == node
    return bool(request.name) and request.referenced(node)  # Rule.REFERENCED
