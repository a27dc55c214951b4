"""Join tokens: pinned to the CA, signed, expiring, one node per token."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudcore.pki import ensure_certificates
from cloudcore.tokens import JoinTokens, TokenError
from kedge.certs import ca_hash


@pytest.fixture
def tokens(tmp_path: Path) -> Iterator[JoinTokens]:
    ensure_certificates(tmp_path / "pki")
    made = JoinTokens(tmp_path / "pki", tmp_path / "tokens.db")
    yield made
    made.close()


def test_token_when_fresh_pins_the_ca_and_joins_its_node_again(
    tokens: JoinTokens, tmp_path: Path
) -> None:
    token = tokens.create()
    assert token.split(".")[0] == ca_hash((tmp_path / "pki" / "ca.crt").read_bytes())
    tokens.check(token, "edge-1")
    tokens.check(token, "edge-1")  # the same node again (it lost its certificate)


def test_token_when_used_by_another_node_is_refused_even_after_a_restart(
    tokens: JoinTokens, tmp_path: Path
) -> None:
    token = tokens.create()
    tokens.check(token, "edge-1")
    reopened = JoinTokens(tmp_path / "pki", tmp_path / "tokens.db")
    try:
        with pytest.raises(TokenError, match="already used by node 'edge-1'"):
            reopened.check(token, "edge-2")
    finally:
        reopened.close()


def test_token_when_expired_is_refused(tokens: JoinTokens) -> None:
    token = tokens.create(datetime.timedelta(seconds=-1))
    with pytest.raises(TokenError, match="expired"):
        tokens.check(token, "edge-1")


def test_token_when_made_for_a_node_refuses_others(tokens: JoinTokens) -> None:
    token = tokens.create(node="edge-1")
    with pytest.raises(TokenError, match="for node 'edge-1', not 'edge-2'"):
        tokens.check(token, "edge-2")


def test_token_when_made_by_another_cloud_is_refused(tokens: JoinTokens, tmp_path: Path) -> None:
    ensure_certificates(tmp_path / "other")
    other = JoinTokens(tmp_path / "other", tmp_path / "other.db")
    try:
        foreign = other.create()
    finally:
        other.close()
    with pytest.raises(TokenError, match="another cloud's CA"):
        tokens.check(foreign, "edge-1")
    ours = tokens.hash
    with pytest.raises(TokenError, match="signature is invalid"):
        tokens.check(ours + foreign[len(ours) :], "edge-1")  # right hash, foreign signature


@pytest.mark.parametrize("damage", ["claims", "signature", "shape"])
def test_token_when_altered_is_refused(tokens: JoinTokens, damage: str) -> None:
    pinned, header, claims, signature = tokens.create().split(".")
    altered = {
        "claims": f"{pinned}.{header}.{claims[:-2]}AA.{signature}",
        "signature": f"{pinned}.{header}.{claims}.{signature[:-2]}AA",
        "shape": f"{pinned}.{header}{claims}",
    }[damage]
    with pytest.raises(TokenError):
        tokens.check(altered, "edge-1")
