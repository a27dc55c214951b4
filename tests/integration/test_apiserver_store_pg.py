"""The API server's store on a real PostgreSQL: the same statements as on SQLite (in the
driver's own parameter style), conflicts told apart, and a connection the server ended is
replaced without failing the request that found it broken."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from cloudcore.apiserver.store import Conflict, Store
from harness.postgres import postgres

DS = "devices.kubeedge.io/devicestatuses"


def _status(value: str, owner: str = "u1") -> dict[str, Any]:
    return {"metadata": {"name": "d", "namespace": "default",
                         "ownerReferences": [{"kind": "Device", "name": "d", "uid": owner}]},
            "status": {"twins": [{"propertyName": "t", "reported": {"value": value}}]}}  # fmt: skip


def _end_other_sessions(url: str) -> int:
    """Every other session ended by the server (as a restart or an idle timeout would)."""
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as admin:
        ended = admin.execute(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE pid <> pg_backend_pid() AND datname = current_database()) AS t"
        ).fetchone()
    return int(ended[0]) if ended else 0


def test_the_store_on_postgresql_writes_reads_and_survives_an_ended_session() -> None:
    with postgres() as url:
        store = Store(url)
        try:
            first = store.write(DS, "default", "d", _status("1"), None, create=True)
            rv = int(first["metadata"]["resourceVersion"])
            with pytest.raises(Conflict):
                store.write(DS, "default", "d", _status("x"), None, create=True)
            store.write(DS, "default", "d", _status("2"), rv, create=False)
            with pytest.raises(Conflict):
                store.write(DS, "default", "d", _status("stale"), rv, create=False)
            assert [o["metadata"]["name"] for _, o in store.owned_by("u1")] == ["d"]

            assert _end_other_sessions(url) >= 1
            stored = store.get(DS, "default", "d")  # met the broken session, ran on a new one
            assert stored is not None and stored["status"]["twins"][0]["reported"]["value"] == "2"
            assert _end_other_sessions(url) >= 1
            store.write(DS, "default", "d", _status("3", owner="u2"), None, create=False)
            assert store.owned_by("u1") == [] and len(store.owned_by("u2")) == 1
            items, _ = store.list(DS, "default")
            assert [i["status"]["twins"][0]["reported"]["value"] for i in items] == ["3"]
            kinds = [c.type for c in store.changes_since(rv - 1, DS)]
            assert kinds == ["ADDED", "MODIFIED", "MODIFIED"]
        finally:
            store.close()
