"""Durable per-node delivery state: newest wins, acks, deletions, restarts."""

from __future__ import annotations

from pathlib import Path

from cloudcore.objectsync import ObjectSync


def test_newest_version_wins_and_acks_clear_it(tmp_path: Path) -> None:
    sync = ObjectSync(tmp_path / "sync.db")
    assert sync.want("n1", "device/default/a", 5, {"v": 5})
    assert sync.want("n1", "device/default/a", 7, {"v": 7})
    assert not sync.want("n1", "device/default/a", 6, {"v": 6})  # older than recorded
    sync.want("n1", "device/default/b", 6, {"v": "b"})
    assert [(p.key, p.rv, p.payload) for p in sync.pending("n1")] == [
        ("device/default/b", 6, {"v": "b"}),
        ("device/default/a", 7, {"v": 7}),
    ]
    sync.ack("n1", "device/default/a", 5)  # an ack of an older version changes nothing pending
    assert len(sync.pending("n1")) == 2
    sync.ack("n1", "device/default/a", 7)
    assert [p.key for p in sync.pending("n1")] == ["device/default/b"]
    assert sync.held("n1") == {"device/default/a": 7}
    assert sync.pending("n2") == []


def test_deletions_are_delivered_then_forgotten_and_survive_restarts(tmp_path: Path) -> None:
    sync = ObjectSync(tmp_path / "sync.db")
    sync.want("n1", "device/default/a", 3, {"v": 3})
    sync.ack("n1", "device/default/a", 3)
    sync.want("n1", "device/default/a", 4, None, deleted=True)
    sync.close()
    again = ObjectSync(tmp_path / "sync.db")  # as after kill -9: the state is on disk
    [pending] = again.pending("n1")
    assert pending.deleted and pending.rv == 4
    again.ack("n1", "device/default/a", 4)
    assert again.pending("n1") == [] and again.held("n1") == {}
