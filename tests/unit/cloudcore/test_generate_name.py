"""generateName: a generated name that is taken is drawn again (Kubernetes' RetryGenerateName),
a name the client chose is not, and giving up after GENERATE_TRIES is an AlreadyExists."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudcore.apiserver import service as service_module
from cloudcore.apiserver.errors import ApiError
from cloudcore.apiserver.service import GENERATE_TRIES, ApiService
from cloudcore.apiserver.store import Store

CONFIGMAPS = "/configmaps"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ApiService]:
    service = ApiService(Store(f"sqlite:///{tmp_path / 'api.db'}"))
    service.bootstrap()
    yield service


def _suffixes(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    drawn = iter(names)
    monkeypatch.setattr(service_module, "_generated", lambda prefix: prefix + next(drawn))


def _generated_cm(api: ApiService) -> str:
    kind = api.registry.by_key(CONFIGMAPS)
    assert kind is not None
    made = api.create(kind, "default", {"metadata": {"generateName": "ev."}})
    return str(made["metadata"]["name"])


def test_a_taken_generated_name_is_drawn_again(
    api: ApiService, monkeypatch: pytest.MonkeyPatch
) -> None:
    _suffixes(monkeypatch, "aaaaa", "aaaaa", "aaaaa", "bbbbb")
    assert _generated_cm(api) == "ev.aaaaa"
    assert _generated_cm(api) == "ev.bbbbb"  # two draws were taken


def test_a_chosen_name_is_never_renamed(api: ApiService) -> None:
    kind = api.registry.by_key(CONFIGMAPS)
    assert kind is not None
    api.create(kind, "default", {"metadata": {"name": "mine"}})
    with pytest.raises(ApiError) as info:
        api.create(kind, "default", {"metadata": {"name": "mine"}})
    assert info.value.code == 409


def test_it_gives_up_after_so_many_draws(api: ApiService, monkeypatch: pytest.MonkeyPatch) -> None:
    _suffixes(monkeypatch, *["zzzzz"] * (GENERATE_TRIES + 1))
    assert _generated_cm(api) == "ev.zzzzz"
    with pytest.raises(ApiError) as info:
        _generated_cm(api)
    assert info.value.code == 409
