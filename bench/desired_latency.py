"""Edge-local desired write (HTTP PUT) -> delta on MQTT: p50/p99, next to a raw broker round trip.

Both are measured from the same client process in the same run: the baseline is one MQTT message
published and received back through the broker; the measured path is a PUT to edgecore (validate,
commit to SQLite, answer) until the delta for exactly that value arrives. Target: p99 < 20 ms.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.harness import device_ids, edge_node, percentile, summary
from harness.support import wait_for


class Waiter:
    """Records when the awaited message arrives; one outstanding expectation at a time."""

    def __init__(self, port: int, topics: list[str]) -> None:
        self.expected: tuple[str, str] | None = None
        self.arrived = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"lat-{uuid.uuid4()}")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        wait_for(self.client.is_connected, what="latency client")
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_a: subscribed.set()
        self.client.subscribe([(topic, 0) for topic in topics])
        subscribed.wait(5)

    def _on_message(self, _c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        if self.expected is None:
            return
        topic, marker = self.expected
        if message.topic == topic and marker.encode() in message.payload:
            self.arrived.set()

    def expect(self, topic: str, marker: str) -> None:
        self.arrived.clear()
        self.expected = (topic, marker)

    def wait(self) -> None:
        if not self.arrived.wait(5):
            raise TimeoutError(f"no message for {self.expected}")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def raw_round_trips(waiter: Waiter, count: int) -> list[float]:
    samples = []
    for i in range(count):
        marker = f"raw-{i}"
        waiter.expect("bench/echo", marker)
        start = time.perf_counter()
        waiter.client.publish("bench/echo", json.dumps({"m": marker}))
        waiter.wait()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def desired_to_delta(waiter: Waiter, base: str, count: int) -> list[float]:
    devices = device_ids(100)
    samples = []
    with httpx.Client(base_url=base, timeout=5) as http:
        for i in range(count):
            device = devices[i % len(devices)]
            value = str(1000 + i)
            waiter.expect(f"$hw/events/device/{device}/twin/update/delta", f'"setpoint":"{value}"')
            start = time.perf_counter()
            response = http.put(
                f"/v1/devices/{device}/twin/setpoint/desired", json={"value": value}
            )
            response.raise_for_status()
            waiter.wait()
            samples.append((time.perf_counter() - start) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()
    with edge_node(100) as (broker, edge):
        waiter = Waiter(broker.port, ["bench/echo", "$hw/events/device/+/+/twin/update/delta"])
        try:
            raw_round_trips(waiter, 200)  # warm-up
            raw = raw_round_trips(waiter, args.count)
            desired_to_delta(waiter, edge.base, 200)
            delta = desired_to_delta(waiter, edge.base, args.count)
        finally:
            waiter.close()
    p99 = percentile(delta, 99)
    print(f"desired write -> delta, {args.count} writes over 100 devices")
    print(f"  raw MQTT round trip:      {summary(raw)}")
    print(f"  HTTP PUT -> MQTT delta:   {summary(delta)}")
    print(f"  p99 ratio to raw p99:     {p99 / percentile(raw, 99):.1f}x")
    print(f"  target p99 < 20 ms: {'MET' if p99 < 20 else 'NOT MET'}")


if __name__ == "__main__":
    main()
