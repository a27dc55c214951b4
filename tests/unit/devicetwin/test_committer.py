"""Group commit: merged batches equal sequential ones; a failed commit reloads from disk."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from devicetwin.committer import merge
from devicetwin.model import Device, DeviceId, Twin, TwinValue
from devicetwin.service import TwinService
from devicetwin.store import Batch, TwinStore

D1, D2 = DeviceId("ns/d1"), DeviceId("ns/d2")


def _device(did: DeviceId) -> Device:
    ns, name = did.split("/")
    return Device(
        id=did,
        name=name,
        namespace=ns,
        twins={"a": Twin("a")},
        spec={"properties": [{"name": "a", "type": "string"}]},
    )


def test_merge_when_rows_repeat_keeps_the_latest() -> None:
    first = Batch(twins={(D1, "a"): Twin("a", actual=TwinValue("1", 1))})
    second = Batch(twins={(D1, "a"): Twin("a", actual=TwinValue("2", 2))})
    assert merge([first, second]).twins[(D1, "a")].actual == TwinValue("2", 2)


def test_merge_when_device_removed_drops_its_earlier_rows() -> None:
    first = Batch(twins={(D1, "a"): Twin("a"), (D2, "a"): Twin("a")}, states={D1: _device(D1)})
    merged = merge([first, Batch(removed={D1})])
    assert list(merged.twins) == [(D2, "a")] and merged.states == {} and merged.removed == {D1}


def test_merge_when_device_removed_then_added_replaces_it() -> None:
    merged = merge([Batch(removed={D1}), Batch(devices={D1: _device(D1)})])
    assert merged.removed == set() and D1 in merged.devices


class FailingOnce(TwinStore):
    """A real SQLite store whose next commit fails like a full disk would."""

    fail_next = False

    def commit(self, batch: Batch) -> None:
        if self.fail_next:
            self.fail_next = False
            raise sqlite3.OperationalError("database or disk is full")
        super().commit(batch)


@pytest.mark.asyncio
async def test_failed_commit_when_replies_pending_reloads_state_from_disk(tmp_path: Path) -> None:
    store = FailingOnce(tmp_path / "db.sqlite")
    service = TwinService("n1", store)
    await service.adopt([_device(D1)])
    topic = "$hw/events/device/ns/d1/twin/update"
    ok = service.handle(topic, b'{"twin":{"a":{"actual":{"value":"kept"}}}}')
    await service.commit(service.take_batch())

    store.fail_next = True
    lost = service.handle(topic, b'{"event_id":"e2","twin":{"a":{"actual":{"value":"lost"}}}}')
    assert service.devices[D1].twins["a"].actual is not None
    with pytest.raises(sqlite3.OperationalError):
        await service.commit(service.take_batch())

    assert ok.code == 200
    assert service.devices[D1].twins["a"].actual.value == "kept"  # memory == disk again
    failed = lost.failed(now=1)
    assert failed.code == 500 and b'"code":500' in failed.replies[0].payload
    assert b'"event_id":"e2"' in failed.replies[0].payload
    await service.close()
    assert TwinStore(tmp_path / "db.sqlite").load()[D1].twins["a"].actual.value == "kept"


@pytest.mark.asyncio
async def test_handle_when_a_bug_raises_answers_500_and_keeps_serving(tmp_path: Path) -> None:
    service = TwinService("n1", TwinStore(tmp_path / "db.sqlite"))
    await service.adopt([_device(D1), _device(D2)])
    service.devices[D1].twins["a"] = "not a twin"  # type: ignore[assignment]  # a bug
    broken = service.handle(
        "$hw/events/device/ns/d1/twin/update", b'{"twin":{"a":{"actual":{"value":"x"}}}}'
    )
    assert broken.code == 500 and b'"code":500' in broken.replies[0].payload
    assert broken.replies[0].topic == "$hw/events/device/ns/d1/twin/update/result"
    assert service.handle("$hw/events/device/ns/d2/twin/get", b"{}").code == 200
    await service.close()
