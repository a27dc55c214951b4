"""The store's update is one statement at the version the writer read: a version that moved
is a Conflict, a missing object a KeyError, and neither changes what is stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudcore.apiserver.store import Conflict, Store

CM = "/configmaps"


def _cm(value: str) -> dict[str, object]:
    return {"metadata": {"name": "c", "namespace": "default"}, "data": {"k": value}}


def test_updates_happen_only_at_the_version_read(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'api.db'}")
    first = int(store.write(CM, "default", "c", _cm("1"), None, create=True)
                ["metadata"]["resourceVersion"])  # fmt: skip
    second = int(store.write(CM, "default", "c", _cm("2"), first, create=False)
                 ["metadata"]["resourceVersion"])  # fmt: skip
    with pytest.raises(Conflict):
        store.write(CM, "default", "c", _cm("stale"), first, create=False)
    with pytest.raises(KeyError):
        store.write(CM, "default", "gone", _cm("x"), None, create=False)
    stored = store.get(CM, "default", "c")
    assert stored is not None and stored["data"] == {"k": "2"}
    assert stored["metadata"]["resourceVersion"] == str(second)
    store.write(CM, "default", "c", _cm("3"), None, create=False)  # unconditional
    assert (store.get(CM, "default", "c") or {})["data"] == {"k": "3"}
