"""The API server's bearer tokens: only digests on disk (0600), a file of clear tokens from an
older kedge rewritten in place, and the admin token reused from the kubeconfig across restarts."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from cloudcore.apiserver.auth import ADMIN, Tokens
from cloudcore.apiserver.server import write_kubeconfig


def _bearer(token: str) -> str:
    return f"Bearer {token}"


def test_issued_tokens_are_kept_only_as_digests(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    tokens = Tokens(path)
    token = tokens.issue("system:node:n1")
    text = path.read_text()
    assert token not in text and "system:node:n1" in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = Tokens(path)  # another process, e.g. the API server reading what a command issued
    user = again.authenticate(_bearer(token))
    assert user is not None and user.node == "n1"
    assert again.authenticate(_bearer(token + "x")) is None
    assert again.authenticate(token) is None  # not a bearer header


def test_a_file_of_clear_tokens_is_rewritten_with_digests(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({"old-admin-token": ADMIN, "old-node-token": "system:node:a"}))
    tokens = Tokens(path)
    assert "old-admin-token" not in path.read_text()
    assert "old-node-token" not in path.read_text()
    admin = tokens.authenticate(_bearer("old-admin-token"))
    assert admin is not None and admin.name == ADMIN  # still valid


def test_the_admin_token_comes_from_the_kubeconfig_at_every_start(tmp_path: Path) -> None:
    path, kubeconfig = tmp_path / "tokens.json", tmp_path / "kubeconfig"
    first = Tokens(path).admin_token(kubeconfig)  # no kubeconfig yet: a new token
    write_kubeconfig(kubeconfig, "https://127.0.0.1:1", first, None)
    assert stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600
    assert Tokens(path).admin_token(kubeconfig) == first  # a restart keeps it
    node = Tokens(path).issue("system:node:n1")
    write_kubeconfig(kubeconfig, "https://127.0.0.1:1", node, None)
    replaced = Tokens(path).admin_token(kubeconfig)
    assert replaced not in (first, node)  # a node's token is never made the admin's
    kubeconfig.write_text(": not yaml [")
    assert Tokens(path).admin_token(kubeconfig) not in (first, node, replaced)
