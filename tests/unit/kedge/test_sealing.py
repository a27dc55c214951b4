"""Sealing: values open only with their key and in their own context; old plain values read."""

from __future__ import annotations

from pathlib import Path

import pytest

from kedge.sealing import PREFIX, Sealer, SealError


def test_a_sealed_value_opens_with_its_key_and_context_only(tmp_path: Path) -> None:
    sealer = Sealer.in_dir(tmp_path)
    assert oct((tmp_path / "encryption.key").stat().st_mode & 0o777) == "0o600"
    sealed = sealer.seal('{"data": {"k": "c2VjcmV0"}}', "/secrets")
    assert sealed.startswith(PREFIX) and "c2VjcmV0" not in sealed
    assert sealer.open(sealed, "/secrets") == '{"data": {"k": "c2VjcmV0"}}'
    assert Sealer.in_dir(tmp_path).open(sealed, "/secrets")  # the same key from the file
    with pytest.raises(SealError):
        sealer.open(sealed, "/configmaps")  # moved to another resource
    with pytest.raises(SealError):
        Sealer.in_dir(tmp_path / "other").open(sealed, "/secrets")  # another key
    with pytest.raises(SealError):
        sealer.open(sealed[:-4] + "AAAA", "/secrets")  # altered


def test_a_value_stored_before_sealing_reads_as_it_is(tmp_path: Path) -> None:
    assert Sealer.in_dir(tmp_path).open('{"a": 1}', "/secrets") == '{"a": 1}'
