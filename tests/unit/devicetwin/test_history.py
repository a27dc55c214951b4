"""Telemetry history in the twin store: every reported value kept in order, across a reopen;
steps give min/max/mean of the numeric values only; retention trims by age, then by count."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from devicetwin.history import Query
from devicetwin.model import Device, DeviceId, Twin
from devicetwin.retention import Retention, effective, parse_rule
from devicetwin.rules import TwinPatch
from devicetwin.service import TwinService
from devicetwin.store import Batch, TwinStore
from edgecore.history import keep_history
from harness.support import wait_until

D = DeviceId("ns/d")


def _store(tmp_path: Path, points: list[tuple[int, str]]) -> TwinStore:
    store = TwinStore(tmp_path / "twins.db")
    store.commit(Batch(history=[(D, "t", ts, value) for ts, value in points]))
    return store


def test_points_come_back_in_order_and_survive_a_reopen(tmp_path: Path) -> None:
    store = _store(tmp_path, [(3000, "21.5"), (1000, "20"), (2000, "on")])
    store.close()
    again = TwinStore(tmp_path / "twins.db")
    assert again.history(Query(D, "t", 0, 10_000)) == [
        {"t": 1000, "v": "20"}, {"t": 2000, "v": "on"}, {"t": 3000, "v": "21.5"}]  # fmt: skip
    assert again.history(Query(D, "t", 1000, 3000)) == [{"t": 1000, "v": "20"},
                                                        {"t": 2000, "v": "on"}]  # fmt: skip
    assert again.history(Query(D, "other", 0, 10_000)) == []


def test_steps_aggregate_numbers_and_leave_out_other_values(tmp_path: Path) -> None:
    store = _store(tmp_path, [(0, "1"), (400, "3"), (900, "bad"), (1000, "10"), (1500, "nan"),
                              (2100, "true")])  # fmt: skip
    assert store.history(Query(D, "t", 0, 3000, step=1000)) == [
        {"t": 0, "min": 1.0, "max": 3.0, "mean": 2.0, "count": 2},
        {"t": 1000, "min": 10.0, "max": 10.0, "mean": 10.0, "count": 1},
    ]  # fmt: skip


def test_retention_trims_by_age_then_by_count(tmp_path: Path) -> None:
    store = _store(tmp_path, [(ts, str(ts)) for ts in range(0, 10_000, 1000)])
    store.commit(Batch(history=[(D, "u", 9500, "x")]))
    removed = store.trim_history(10_000, Retention(max_age_ms=5500, max_points=3), {})
    assert [p["t"] for p in store.history(Query(D, "t", 0, 20_000))] == [7000, 8000, 9000]
    assert removed == 7 and store.history(Query(D, "u", 0, 20_000)) == [{"t": 9500, "v": "x"}]


async def test_every_reported_value_is_recorded_not_only_the_latest(tmp_path: Path) -> None:
    store = TwinStore(tmp_path / "twins.db")
    clock = iter(range(1000, 2000, 10))
    service = TwinService("n", store, clock=lambda: next(clock))
    service.devices[D] = Device(id=D, name="d", namespace="ns", twins={"t": Twin("t")},
                                spec={"properties": [{"name": "t", "type": "string"}]})  # fmt: skip
    for value in ("1", "1", "2"):  # in one burst: the twin keeps the last, history all three
        service.report(D, {"t": TwinPatch(actual=value)})
    service.report(D, {"t": TwinPatch(expected="5")})  # a desired write is not a reading
    await service.commit(service.take_batch())
    values = [p["v"] for p in store.history(Query(D, "t", 0, 10_000))]
    assert values == ["1", "1", "2"] and service.history_pending == 3
    await service.close()


async def test_the_keeper_trims_only_after_new_values(tmp_path: Path) -> None:
    store = TwinStore(tmp_path / "twins.db")
    service = TwinService("n", store, clock=lambda: 5000)
    service.devices[D] = Device(id=D, name="d", namespace="ns", twins={"t": Twin("t")},
                                spec={"properties": [{"name": "t", "type": "string"}]})  # fmt: skip
    for value in ("1", "2", "3"):
        service.report(D, {"t": TwinPatch(actual=value)})
    await service.commit(service.take_batch())
    keeper = asyncio.create_task(keep_history(service, Retention(max_points=1), period=0.01))
    await wait_until(lambda: service.history_pending == 0, within=5, what="a trim")
    await wait_until(lambda: len(store.history(Query(D, "t", 0, 10_000))) == 1, within=5,
                     what="the budget kept")  # fmt: skip
    keeper.cancel()
    await service.close()


async def test_the_keeper_applies_a_device_and_property_retention(tmp_path: Path) -> None:
    store = TwinStore(tmp_path / "twins.db")
    service = TwinService("n", store, clock=lambda: 5000)
    rule = parse_rule('{"maxPoints": 2, "properties": {"u": {"maxPoints": 3}}}')
    spec = {"properties": [{"name": n, "type": "string"} for n in "tuv"], "history": rule}
    service.devices[D] = Device(id=D, name="d", namespace="ns", spec=spec,
                                twins={n: Twin(n) for n in "tuv"})  # fmt: skip
    other = DeviceId("ns/other")  # no rule of its own: edgecore's
    plain = {"properties": [{"name": "t", "type": "string"}]}
    service.devices[other] = Device(id=other, name="other", namespace="ns",
                                    twins={"t": Twin("t")}, spec=plain)  # fmt: skip
    for value in ("1", "2", "3", "4", "5"):
        service.report(D, {n: TwinPatch(actual=value) for n in "tuv"})
        service.report(other, {"t": TwinPatch(actual=value)})
    await service.commit(service.take_batch())
    keeper = asyncio.create_task(keep_history(service, Retention(max_points=4), period=0.01))

    def kept() -> dict[str, int]:
        counts = {n: len(store.history(Query(D, n, 0, 10_000))) for n in "tuv"}
        return counts | {"other": len(store.history(Query(other, "t", 0, 10_000)))}

    await wait_until(lambda: kept() == {"t": 2, "u": 3, "v": 2, "other": 4}, within=5,
                     what="each series trimmed to its own budget")  # fmt: skip
    keeper.cancel()
    await service.close()


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("not json", "must be a JSON object"),
        ("[1]", "must be a JSON object"),
        ('{"maxAge": "soon"}', "maxAge: 'soon' is not a duration"),
        ('{"maxAge": "0s"}', "is not a duration"),
        ('{"maxPoints": 0}', "maxPoints: 0 is not a positive integer"),
        ('{"maxPoints": true}', "is not a positive integer"),
        ('{"keep": 1}', "unknown keys ['keep']"),
        ('{"properties": []}', "must be an object of property names"),
        ('{"properties": {"t": {"maxAge": "x"}}}', "retention.properties.t.maxAge"),
    ],
)
def test_retention_rule_when_bad_says_why(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=re.escape(why)):
        parse_rule(text)


def test_retention_rule_when_layered_property_wins_over_device_over_node() -> None:
    rule = parse_rule('{"maxAge": "1d", "properties": {"t": {"maxAge": "30m", "maxPoints": 9}}}')
    base = Retention(max_age_ms=1000, max_points=100)
    assert effective(base, rule, "t") == Retention(30 * 60_000, 9)
    assert effective(base, rule, "u") == Retention(86_400_000, 100)
    assert effective(base, None, "t") == base
