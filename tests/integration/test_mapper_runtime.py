"""Mapper runtime against a real broker and simulator: bad messages, removal, read-only deltas."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from harness.support import Mosquitto, MqttProbe, free_port, mapper_running
from mappers.runtime import Mapper
from simulators.modbus import ModbusSimulator

NODE_TOPIC = "$hw/events/node/n1/membership"
DEV_TOPIC = "$hw/events/device/default/thermo"


def entry(port: int) -> dict[str, Any]:
    return {
        "id": "default/thermo",
        "twin": {},
        "spec": {
            "protocol": {
                "protocolName": "modbus",
                "configData": {"ip": "127.0.0.1", "port": port, "slaveID": 1},
            },
            "properties": [
                {
                    "name": "temperature",
                    "type": "float",
                    "accessMode": "ReadOnly",
                    "collectCycle": 100,
                    "visitors": {"configData": {"register": "InputRegister", "scale": 0.1}},
                },
                {
                    "name": "setpoint",
                    "type": "int",
                    "accessMode": "ReadWrite",
                    "collectCycle": 100,
                    "visitors": {"configData": {"register": "HoldingRegister"}},
                },
            ],
        },
    }


@pytest.fixture
async def running(broker: Mosquitto) -> AsyncIterator[tuple[Mapper, MqttProbe, ModbusSimulator]]:
    simulator = ModbusSimulator(free_port())
    await simulator.start()
    probe = MqttProbe(broker.port)
    probe.subscribe("$hw/events/#")
    async with mapper_running("modbus", broker.url) as mapper:
        await asyncio.to_thread(probe.expect, f"{NODE_TOPIC}/get")
        yield mapper, probe, simulator
    probe.close()
    await simulator.stop()


async def test_malformed_messages_when_received_are_ignored_and_mapper_keeps_serving(
    running,
) -> None:
    mapper, probe, simulator = running
    for topic, payload in [
        (f"{NODE_TOPIC}/get/result/modbus", b"{not json"),
        (f"{NODE_TOPIC}/get/result/modbus", b"[1,2]"),
        (
            f"{NODE_TOPIC}/get/result/modbus",
            orjson.dumps({"event_id": mapper._asked, "devices": [{}]}),
        ),
        (f"{NODE_TOPIC}/updated/modbus", b'{"added_devices": "nope"}'),
        (f"{DEV_TOPIC}/twin/update/delta", b'{"delta": 5}'),
        (f"{DEV_TOPIC}/twin/update/delta", b"\xff\xfe"),
    ]:
        probe.publish(topic, payload)
    probe.publish(
        f"{NODE_TOPIC}/get/result/modbus",
        {"event_id": mapper._asked, "devices": [entry(simulator.port)]},
    )
    state = await asyncio.to_thread(probe.expect, f"{DEV_TOPIC}/state/update")
    assert state["state"] == "online" and "default/thermo" in mapper.workers
    # no reconnect happened: a reconnecting mapper would ask for membership again
    assert not any(topic == f"{NODE_TOPIC}/get" for topic, _ in probe.seen)


async def test_delta_when_property_read_only_is_not_written(running) -> None:
    mapper, probe, simulator = running
    probe.publish(
        f"{NODE_TOPIC}/get/result/modbus",
        {"event_id": mapper._asked, "devices": [entry(simulator.port)]},
    )
    await asyncio.to_thread(probe.expect, f"{DEV_TOPIC}/state/update")
    probe.publish(
        f"{DEV_TOPIC}/twin/update/delta", {"delta": {"temperature": "99", "setpoint": "26"}}
    )
    await asyncio.to_thread(
        probe.expect,
        f"{DEV_TOPIC}/twin/update",
        lambda b: b["twin"].get("setpoint", {}).get("actual", {}).get("value") == "26",
    )
    assert simulator.state.setpoint == 26.0 and simulator.state.temperature < 99


async def test_removed_device_when_announced_stops_its_worker(running) -> None:
    mapper, probe, simulator = running
    probe.publish(
        f"{NODE_TOPIC}/get/result/modbus",
        {"event_id": mapper._asked, "devices": [entry(simulator.port)]},
    )
    await asyncio.to_thread(probe.expect, f"{DEV_TOPIC}/state/update")
    probe.publish(
        f"{NODE_TOPIC}/updated/modbus",
        {"added_devices": [], "updated_devices": [], "removed_devices": [{"id": "default/thermo"}]},
    )
    async with asyncio.timeout(10):
        while mapper.workers:  # noqa: ASYNC110 - the mapper has no event to await here
            await asyncio.sleep(0.02)


async def test_report_to_cloud_false_when_polled_sends_no_twin_reports(running) -> None:
    mapper, probe, simulator = running
    device = entry(simulator.port)
    device["spec"]["properties"][0]["reportToCloud"] = False  # temperature
    probe.publish(
        f"{NODE_TOPIC}/get/result/modbus", {"event_id": mapper._asked, "devices": [device]}
    )
    reports = []
    for _ in range(3):  # several report rounds of the other property
        reports.append(
            await asyncio.to_thread(
                probe.expect, f"{DEV_TOPIC}/twin/update", lambda b: "setpoint" in b["twin"]
            )
        )
    seen = [b for t, b in probe.seen if t == f"{DEV_TOPIC}/twin/update"]
    assert all("temperature" not in r["twin"] for r in reports)
    assert not any(b"temperature" in payload for payload in seen)
