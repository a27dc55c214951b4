"""A membership snapshot answered late (taken before an update the mapper already applied) must
not undo that update: with several mappers on a node, each one's membership/get is answered on
the shared result topic, possibly after devices arrived from the cloud."""

from __future__ import annotations

import asyncio

from devicetwin.topics import membership_result_topic, membership_updated_topic
from kedge.mqtt import MqttSettings
from mappers.runtime import Mapper, MapperSettings

ENTRY = {"id": "default/ble-1", "spec": {"protocol": {"protocolName": "bluetooth"}}}


async def test_late_snapshot_does_not_remove_a_device_added_after_it() -> None:
    def driver_factory(*_: object) -> object:  # no device I/O in this test: workers just end
        raise RuntimeError("no driver")

    mapper = Mapper(MapperSettings("bluetooth", "n1", MqttSettings("127.0.0.1", 1)),
                    driver_factory)  # type: ignore[arg-type]  # fmt: skip
    try:
        mapper._dispatch(membership_updated_topic("n1"), {
            "timestamp": 2000, "added_devices": [ENTRY], "removed_devices": [],
            "updated_devices": []})  # fmt: skip
        assert set(mapper.workers) == {"default/ble-1"}
        mapper._dispatch(membership_result_topic("n1"), {"timestamp": 1999, "devices": []})
        assert set(mapper.workers) == {"default/ble-1"}  # stale: ignored
        mapper._dispatch(membership_result_topic("n1"), {"timestamp": 2001, "devices": []})
        assert mapper.workers == {}  # newer: the device is really gone
    finally:
        for worker in list(mapper.workers.values()):
            await worker.stop()
        await asyncio.gather(*mapper._stopping, return_exceptions=True)
