"""pushMethod mqtt and http, with the mapper in-process against a real broker and simulator."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from harness.support import Mosquitto, MqttProbe, free_port, mapper_running
from simulators.modbus import ModbusSimulator


@pytest.fixture
def http_sink() -> Iterator[tuple[int, queue.Queue[dict[str, Any]]]]:
    received: queue.Queue[dict[str, Any]] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers["content-length"])
            received.put(
                {
                    "path": self.path,
                    "type": self.headers["content-type"],
                    "body": json.loads(self.rfile.read(length)),
                }
            )
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], received
    server.shutdown()
    server.server_close()


def device_entry(modbus_port: int, http_port: int) -> dict[str, Any]:
    visitors = {"register": "InputRegister", "offset": 0, "limit": 1, "scale": 0.1}
    return {
        "id": "default/thermo",
        "name": "thermo",
        "namespace": "default",
        "twin": {},
        "spec": {
            "protocol": {
                "protocolName": "modbus",
                "configData": {"ip": "127.0.0.1", "port": modbus_port, "slaveID": 1},
            },
            "properties": [
                {
                    "name": "temperature",
                    "type": "float",
                    "accessMode": "ReadOnly",
                    "collectCycle": 100,
                    "reportCycle": 1000,
                    "visitors": {"configData": visitors},
                    "pushMethod": {"mqtt": {"address": "", "topic": "push/thermo", "qos": 1}},
                },
                {
                    "name": "humidity",
                    "type": "float",
                    "accessMode": "ReadOnly",
                    "collectCycle": 100,
                    "visitors": {"configData": {**visitors, "offset": 1}},
                    "pushMethod": {
                        "http": {
                            "hostName": "http://127.0.0.1",
                            "port": http_port,
                            "requestPath": "/readings",
                            "timeout": 2000,
                        }
                    },
                },
            ],
        },
    }


async def test_push_methods_when_configured_deliver_json_readings(
    broker: Mosquitto, http_sink
) -> None:
    http_port, received = http_sink
    simulator = ModbusSimulator(free_port())
    await simulator.start()
    probe = MqttProbe(broker.port)
    probe.subscribe("push/#")
    probe.subscribe("$hw/events/#")
    try:
        async with mapper_running("modbus", broker.url):
            entry = device_entry(simulator.port, http_port)
            entry["spec"]["properties"][0]["pushMethod"]["mqtt"]["address"] = (
                f"tcp://127.0.0.1:{broker.port}"
            )
            asked = await asyncio.to_thread(
                probe.expect,
                "$hw/events/node/n1/membership/get",
                lambda b: b.get("protocol") == "modbus",
            )
            answer = {"event_id": asked["event_id"], "devices": [entry]}
            probe.publish("$hw/events/node/n1/membership/get/result/modbus", answer)
            pushed = await asyncio.to_thread(probe.expect, "push/thermo")
            assert pushed["device"] == "default/thermo" and pushed["property"] == "temperature"
            assert pushed["type"] == "float" and float(pushed["value"]) > 0 and pushed["timestamp"]
            posted = await asyncio.to_thread(received.get, True, 10)
            assert posted["path"] == "/readings" and posted["type"] == "application/json"
            assert posted["body"]["property"] == "humidity"
            report = await asyncio.to_thread(
                probe.expect, "$hw/events/device/default/thermo/twin/update"
            )
            assert set(report["twin"]) <= {"temperature", "humidity"}
    finally:
        probe.close()
        await simulator.stop()


async def test_bad_push_method_when_configured_marks_device_unhealthy(broker: Mosquitto) -> None:
    probe = MqttProbe(broker.port)
    probe.subscribe("$hw/events/#")
    try:
        async with mapper_running("modbus", broker.url):
            entry = device_entry(free_port(), free_port())
            entry["spec"]["properties"][0]["pushMethod"] = {"kafka": {}}
            asked = await asyncio.to_thread(probe.expect, "$hw/events/node/n1/membership/get")
            answer = {"event_id": asked["event_id"], "devices": [entry]}
            probe.publish("$hw/events/node/n1/membership/get/result/modbus", answer)
            state = await asyncio.to_thread(
                probe.expect, "$hw/events/device/default/thermo/state/update"
            )
            assert state["state"] == "unhealthy"
    finally:
        probe.close()
