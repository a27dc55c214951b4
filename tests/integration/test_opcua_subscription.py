"""OPC UA data-change subscriptions: values arrive without polling."""

from __future__ import annotations

import asyncio
import json
import time

from harness.support import Mosquitto, MqttProbe, free_port, mapper_running
from mappers.worker import SUBSCRIBED_POLL
from simulators.opcua import OpcUaSimulator
from simulators.thermostat import Thermostat


async def test_subscribed_property_when_device_changes_reports_without_polling(
    broker: Mosquitto,
) -> None:
    simulator = OpcUaSimulator(free_port(), state=Thermostat(temperature=15.0, setpoint=30.0))
    await simulator.start()
    probe = MqttProbe(broker.port)
    probe.subscribe("$hw/events/#")
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
        async with mapper_running("opcua", broker.url):
            asked = await asyncio.to_thread(probe.expect, "$hw/events/node/n1/membership/get")
            answer = {"event_id": asked["event_id"], "devices": [entry]}
            probe.publish("$hw/events/node/n1/membership/get/result/opcua", answer)
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
        probe.close()
        await simulator.stop()
