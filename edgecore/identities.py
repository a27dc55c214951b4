"""Who may do what on the edge broker: an identity per role, as mosquitto's password and ACL files.

    edgecore            everything under $hw/ (it answers, publishes deltas and membership)
    app                 read the twins, documents, results and KubeEdge's membership; ask for a
                        twin (twin/get); nothing else (no desired writes, no forged deltas)
    mapper-<protocol>   its protocol's devices only (their topics: reports, states, deltas);
                        its protocol's membership topics (with the devices' specs); its
                        presence; ask membership/get

A pod's role comes from edged (`role_of`): a mapper image `kedge/mapper-<protocol>` or the pod
annotation `devices.kedge.io/mapper-protocol`, else app. Each role's password is random, kept in
`identities.json` (0600) with the role's URL beside it (`<role>.url`, 0600); the password file
holds only salted PBKDF2-SHA512 hashes (mosquitto's `$7$` format).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from devicetwin import topics
from devicetwin.model import DeviceId
from devicetwin.topics import (
    ANY_DEVICE,
    device_subtree,
    mapper_presence_topic,
    membership_get_topic,
    membership_result_topic,
    membership_updated_topic,
    twin_get_topic,
)
from kedge.mqtt import MqttSettings
from kedge.process import write_private

EDGECORE, APP = "edgecore", "app"
MAPPER_ANNOTATION = "devices.kedge.io/mapper-protocol"
_PROTOCOL = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}\Z")
_MAPPER_IMAGE = re.compile(r"^(?:[^/]+/)*kedge/mapper-([a-z0-9][a-z0-9-]{0,62})(?::[^/]*)?\Z")
HASH_ROUNDS = 101  # mosquitto_passwd's default


def role_of(pod: Mapping[str, Any]) -> str:
    """The broker role a pod's containers get."""
    meta = pod.get("metadata") if isinstance(pod.get("metadata"), dict) else {}
    annotations = (meta or {}).get("annotations") or {}
    protocol = annotations.get(MAPPER_ANNOTATION) if isinstance(annotations, dict) else None
    if not isinstance(protocol, str):
        spec = pod.get("spec") if isinstance(pod.get("spec"), dict) else {}
        images = [str(c.get("image", "")) for c in (spec or {}).get("containers") or []
                  if isinstance(c, dict)]  # fmt: skip
        found = [m.group(1) for m in map(_MAPPER_IMAGE.match, images) if m]
        protocol = found[0] if found else None
    return f"mapper-{protocol}" if protocol and _PROTOCOL.match(protocol) else APP


def password_hash(password: str) -> str:
    """mosquitto's `$7$` hash: PBKDF2-SHA512, 101 rounds, a 12-byte salt, base64."""
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, HASH_ROUNDS)
    return f"$7${HASH_ROUNDS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def anonymous_acl(node: str) -> list[str]:
    """What an anonymous loopback client may do when the option is on: what KubeEdge's apps and
    mappers do on its edge broker (any device's topics, the node's membership), no more."""
    return [f"topic readwrite {device_subtree()}", f"topic write {membership_get_topic(node)}",
            f"topic read {membership_result_topic(node)}",
            f"topic read {membership_updated_topic(node)}", ""]  # fmt: skip


def acl_text(
    node: str, roles: Sequence[str], devices: Mapping[str, Sequence[str]], anonymous: bool = False
) -> str:
    """The ACL file: `devices` maps a protocol to its devices' ids (`ns/name`); lines before the
    first `user` apply to anonymous clients."""
    asking = membership_get_topic(node)
    lines = anonymous_acl(node) if anonymous else []
    lines += [f"user {EDGECORE}", f"topic readwrite {topics.ALL}", "", f"user {APP}",
             f"topic read {device_subtree()}", f"topic read {membership_result_topic(node)}",
             f"topic read {membership_updated_topic(node)}", f"topic write {asking}",
             f"topic write {twin_get_topic(ANY_DEVICE)}", ""]  # fmt: skip
    for role in sorted(r for r in roles if r.startswith("mapper-")):
        protocol = role.removeprefix("mapper-")
        lines += [f"user {role}", f"topic write {asking}",
                  f"topic read {membership_result_topic(node, protocol)}",
                  f"topic read {membership_updated_topic(node, protocol)}",
                  f"topic write {mapper_presence_topic(node, protocol, '+')}"]  # fmt: skip
        # one line per device (mosquitto scans a client's lines for every message): its own
        # devices' topics; what else it could publish there (a delta, a result) it could as
        # well make true by reporting, and it reaches no other protocol's devices
        lines += [f"topic readwrite {device_subtree(DeviceId(device))}"
                  for device in sorted(devices.get(protocol, ()))]  # fmt: skip
        lines.append("")
    return "\n".join(lines)


class Identities:
    def __init__(self, directory: Path, node: str, port: int, anonymous: bool = False) -> None:
        self.dir, self.node, self.port, self.anonymous = directory, node, port, anonymous
        self._file = directory / "identities.json"
        try:
            self.passwords: dict[str, str] = json.loads(self._file.read_text())
        except (OSError, ValueError):
            self.passwords = {}
        self._written: tuple[tuple[str, ...], tuple[tuple[str, tuple[str, ...]], ...]] | None = None

    def settings(self, role: str) -> MqttSettings:
        """The role's broker settings, the role made on first use (write() stores it)."""
        if role not in self.passwords:
            self.passwords[role] = secrets.token_urlsafe(24)
            write_private(self._file, json.dumps(self.passwords))
        return MqttSettings("127.0.0.1", self.port, role, self.passwords[role])

    def write(self, devices: Mapping[str, Sequence[str]]) -> bool:
        """The password and ACL files for every role and `devices`; False if nothing changed."""
        for role in (EDGECORE, APP, *(f"mapper-{p}" for p in devices if _PROTOCOL.match(p))):
            self.settings(role)
        wanted = (tuple(sorted(self.passwords)),
                  tuple(sorted((p, tuple(sorted(d))) for p, d in devices.items())))  # fmt: skip
        if wanted == self._written:
            return False
        lines = [f"{role}:{password_hash(password)}" for role, password in self.passwords.items()]
        write_private(self.dir / "passwd", "\n".join(lines) + "\n")
        write_private(
            self.dir / "acl", acl_text(self.node, list(self.passwords), devices, self.anonymous)
        )
        for role in self.passwords:
            write_private(self.dir / f"{role}.url", self.settings(role).url() + "\n")
        os.chmod(self.dir, 0o700)
        self._written = wanted
        return True
