"""Several mappers share a node's membership/result topic: a mapper applies only the answer to
its own request (others carry other protocols' devices), and not a snapshot taken before an
update it already applied (an answer published after devices arrived from the cloud)."""

from __future__ import annotations

import asyncio

from devicetwin.topics import membership_result_topic, membership_updated_topic
from kedge.mqtt import MqttSettings
from mappers.runtime import Mapper, MapperSettings
from mappers.worker import needs_restart

ENTRY = {"id": "default/ble-1", "spec": {"protocol": {"protocolName": "bluetooth"}}}


async def test_only_our_own_fresh_answer_replaces_the_device_set() -> None:
    def driver_factory(*_: object) -> object:  # no device I/O in this test: workers just end
        raise RuntimeError("no driver")

    mapper = Mapper(MapperSettings("bluetooth", "n1", MqttSettings("127.0.0.1", 1)),
                    driver_factory)  # type: ignore[arg-type]  # fmt: skip
    try:
        mapper._dispatch(membership_updated_topic("n1", "bluetooth"), {
            "timestamp": 2000, "added_devices": [ENTRY], "removed_devices": [],
            "updated_devices": []})  # fmt: skip
        assert set(mapper.workers) == {"default/ble-1"}
        mapper._asked = "ours"
        stale = {"event_id": "ours", "timestamp": 1999, "devices": []}
        mapper._dispatch(membership_result_topic("n1", "bluetooth"), stale)
        assert set(mapper.workers) == {"default/ble-1"}  # stale: ignored
        other = {"event_id": "modbus-mapper's", "timestamp": 2001, "devices": []}
        mapper._dispatch(membership_result_topic("n1", "bluetooth"), other)
        assert set(mapper.workers) == {"default/ble-1"}  # someone else's answer: ignored
        mapper._dispatch(membership_result_topic("n1", "bluetooth"), {**stale, "timestamp": 2001})
        assert mapper.workers == {}  # our newer answer: the device is really gone
    finally:
        for worker in list(mapper.workers.values()):
            await worker.stop()
        await asyncio.gather(*mapper._stopping, return_exceptions=True)


def _spec(port: int = 502, cycle: int = 1000, subscribe: bool = False) -> dict[str, object]:
    visitor = {"register": "HoldingRegister", **({"subscribe": True} if subscribe else {})}
    return {
        "protocol": {"protocolName": "bluetooth", "configData": {"port": port}},
        "properties": [{"name": "sp", "type": "int", "collectCycle": cycle,
                        "visitors": {"configData": visitor}}],
    }  # fmt: skip


def test_a_new_spec_restarts_only_for_a_new_address_or_new_subscriptions() -> None:
    assert not needs_restart(_spec(), _spec(cycle=5000))  # new cycles: in place
    assert needs_restart(_spec(), _spec(port=503))  # another address: a new connection
    assert needs_restart(_spec(), _spec(subscribe=True))  # subscriptions live on the connection


async def test_a_changed_cycle_keeps_the_worker() -> None:
    def driver_factory(*_: object) -> object:
        raise RuntimeError("no driver")

    mapper = Mapper(MapperSettings("bluetooth", "n1", MqttSettings("127.0.0.1", 1)),
                    driver_factory)  # type: ignore[arg-type]  # fmt: skip
    entry = {"id": "default/ble-1", "spec": _spec()}
    try:
        mapper._start(entry)
        worker = mapper.workers["default/ble-1"]
        mapper._start({**entry, "spec": _spec(cycle=5000)})
        assert mapper.workers["default/ble-1"] is worker
        assert worker.properties["sp"].collect_cycle_ms == 5000
        mapper._start({**entry, "spec": _spec(port=503)})
        assert mapper.workers["default/ble-1"] is not worker
    finally:
        for each in list(mapper.workers.values()):
            await each.stop()
        await asyncio.gather(*mapper._stopping, return_exceptions=True)
