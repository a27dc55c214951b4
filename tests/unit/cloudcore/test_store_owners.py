"""ownerReferences are indexed both ways: garbage collection finds an owner's dependents, and an
update finds its own rows, without a scan of every owned object (a fleet's store holds one
owned DeviceStatus per device, and every status write is an update)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from cloudcore.apiserver.store import Store

DS = "devices.kubeedge.io/devicestatuses"


def _status(name: str, *owners: str) -> dict[str, Any]:
    refs = [{"apiVersion": "devices.kubeedge.io/v1beta1", "kind": "Device", "name": name,
             "uid": uid, "controller": i == 0} for i, uid in enumerate(owners)]  # fmt: skip
    return {"metadata": {"name": name, "namespace": "default", "ownerReferences": refs},
            "status": {}}  # fmt: skip


def _names(store: Store, uid: str) -> list[str]:
    return sorted(obj["metadata"]["name"] for _, obj in store.owned_by(uid))


def _plan(db: Path, statement: str) -> str:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(f"EXPLAIN QUERY PLAN {statement}", ("r", "ns", "n")).fetchall()
    return " ".join(str(row[-1]) for row in rows)


def test_an_update_finds_its_owner_rows_through_an_index(tmp_path: Path) -> None:
    db = tmp_path / "api.db"
    Store(f"sqlite:///{db}").close()
    where = "WHERE resource = ? AND namespace = ? AND name = ?"
    for statement in (f"DELETE FROM owners {where}", f"SELECT owner_uid FROM owners {where}"):
        plan = _plan(db, statement)
        assert "USING INDEX ix_owners_object" in plan, plan


def test_a_store_made_before_the_index_gets_it(tmp_path: Path) -> None:
    db = tmp_path / "api.db"
    store = Store(f"sqlite:///{db}")
    store.write(DS, "default", "a", _status("a", "u1"), None, create=True)
    store.close()
    with sqlite3.connect(db) as conn:
        conn.execute("DROP INDEX ix_owners_object")
    store = Store(f"sqlite:///{db}")
    assert "USING INDEX ix_owners_object" in _plan(
        db, "DELETE FROM owners WHERE resource = ? AND namespace = ? AND name = ?"
    )
    assert _names(store, "u1") == ["a"]
    store.close()


def test_owners_follow_every_change_of_ownerreferences(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'api.db'}")
    store.write(DS, "default", "a", _status("a", "u1"), None, create=True)
    store.write(DS, "default", "b", _status("b", "u1", "u2"), None, create=True)
    assert _names(store, "u1") == ["a", "b"] and _names(store, "u2") == ["b"]
    store.write(DS, "default", "a", _status("a", "u1"), None, create=False)  # unchanged
    assert _names(store, "u1") == ["a", "b"]
    store.write(DS, "default", "b", _status("b", "u2", "u3"), None, create=False)  # changed
    assert _names(store, "u1") == ["a"] and _names(store, "u3") == ["b"]
    store.write(DS, "default", "a", _status("a"), None, create=False)  # released
    assert _names(store, "u1") == [] and _names(store, "u2") == ["b"]
    store.delete(DS, "default", "b")
    assert _names(store, "u2") == [] and _names(store, "u3") == []
    store.close()
