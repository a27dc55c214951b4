"""OPC UA data-change subscriptions: values arrive without polling."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

from kedge.mqtt import parse_mqtt_url
from mappers.registry import driver_factory
from mappers.runtime import SUBSCRIBED_POLL, Mapper, MapperSettings
from simulators.opcua import OpcUaSimulator
from simulators.thermostat import Thermostat
from tests.support import Mosquitto, MqttProbe, free_port


async def test_subscribed_property_when_device_changes_reports_without_polling(
    broker: Mosquitto,
) -> None:
    simulator = OpcUaSimulator(free_port(), state=Thermostat(temperature=15.0, setpoint=30.0))
    await simulator.start()
    probe = MqttProbe(broker.port)
    probe.subscribe("$hw/events/#")
    mapper = Mapper(
        MapperSettings("opcua", "n1", parse_mqtt_url(broker.url)), driver_factory("opcua")
    )
    task = asyncio.create_task(mapper.run())
    entry = {
        "id": "default/t",
        "twin": {},
        "spec": {
            "protocol": {"protocolName": "opcua", "configData": {"url": simulator.url}},
            "properties": [
                {
                    "name": "temperature",
                    "type": "double",
                    "accessMode": "ReadOnly",
                    "collectCycle": 60000,
                    "reportCycle": 1000,
                    "visitors": {
                        "configData": {
                            "nodeID": "ns=2;s=Thermostat.Temperature",
                            "subscribe": True,
                            "publishingInterval": 200,
                        }
                    },
                }
            ],
        },
    }
    try:
        await asyncio.to_thread(probe.expect, "$hw/events/node/n1/membership/get")
        probe.publish("$hw/events/node/n1/membership/get/result", {"devices": [entry]})
        seen: set[str] = set()
        start = time.monotonic()

        def three_values() -> bool:
            while len(seen) < 3:
                body = probe.expect("$hw/events/device/default/t/twin/update", timeout=4)
                seen.add(json.dumps(body["twin"]["temperature"]["actual"]["value"]))
            return True

        await asyncio.to_thread(three_values)
        # polling alone (collectCycle 60 s) would have produced one value by now
        assert time.monotonic() - start < SUBSCRIBED_POLL
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        probe.close()
        await simulator.stop()
