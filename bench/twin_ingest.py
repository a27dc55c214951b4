"""Reported-twin ingest through one edgecore vs raw broker pass-through, same client, same run.

A closed loop keeps WINDOW messages in flight: an update counts when its `/result` arrives
(so it was validated, committed to SQLite and answered); a raw message counts when the broker
delivers it back. Target: >= 10,000 updates/s and >= 50 % of raw pass-through.
"""

from __future__ import annotations

import argparse
import itertools
import threading
import time
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.harness import device_ids, edge_node
from tests.support import wait_for

WINDOW = 2000


class LoopClient:
    """One paho client that publishes with at most WINDOW outstanding and counts replies."""

    def __init__(self, port: int) -> None:
        self.window = threading.Semaphore(WINDOW)
        self.received = 0
        self.errors = 0
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{uuid.uuid4()}")
        self.client.max_queued_messages_set(0)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        wait_for(self.client.is_connected, what="bench client")

    def _on_message(self, _client: object, _userdata: object, message: mqtt.MQTTMessage) -> None:
        if b'"code"' in message.payload[:80]:
            self.errors += 1
        self.received += 1
        self.window.release()

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *_a: done.set()
        self.client.subscribe(topic)
        done.wait(5)

    def run(
        self, messages: itertools.cycle[tuple[str, bytes]], seconds: float, warmup: float
    ) -> float:
        """Publish for warmup + seconds; return replies per second over the measured part."""
        start = time.monotonic()
        measured_from, counted_from = start + warmup, None
        end = measured_from + seconds
        while (now := time.monotonic()) < end:
            if counted_from is None and now >= measured_from:
                counted_from, measured_from = self.received, now
            if self.window.acquire(timeout=1):
                topic, payload = next(messages)
                self.client.publish(topic, payload)
        assert counted_from is not None
        rate = (self.received - counted_from) / (time.monotonic() - measured_from)
        wait_for(lambda: self.window._value == WINDOW, timeout=30, what="in-flight to drain")
        return rate

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _updates(devices: list[str]) -> itertools.cycle[tuple[str, bytes]]:
    batch = []
    for n, device in enumerate(devices * 10):
        value = f"{20 + (n % 97) / 10:.1f}"
        payload = f'{{"event_id":"","twin":{{"temperature":{{"actual":{{"value":"{value}"}}}}}}}}'
        batch.append((f"$hw/events/device/{device}/twin/update", payload.encode()))
    return itertools.cycle(batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    args = parser.parse_args()
    devices = device_ids(100)
    with edge_node(len(devices)) as (broker, edge):
        client = LoopClient(broker.port)
        try:
            client.subscribe("bench/raw/#")
            raw_messages = itertools.cycle(
                [
                    (f"bench/raw/{device}", payload)
                    for (_, payload), device in zip(
                        itertools.islice(_updates(devices), len(devices)), devices, strict=True
                    )
                ]
            )
            raw = client.run(raw_messages, args.seconds, args.warmup)
            client.client.unsubscribe("bench/raw/#")
            client.subscribe("$hw/events/device/+/+/twin/update/result")
            ingest = client.run(_updates(devices), args.seconds, args.warmup)
        finally:
            client.close()
        rss = edge.rss_mb() if hasattr(edge, "rss_mb") else None
    print(f"twin ingest, 100 devices, {args.seconds:.0f} s each, window {WINDOW}")
    print(f"  raw broker pass-through: {raw:,.0f} msg/s")
    print(
        f"  edgecore ingest:         {ingest:,.0f} updates/s "
        f"({ingest / raw:.0%} of raw; errors {client.errors})"
    )
    print(
        f"  target: >= 10,000 updates/s and >= 50% of raw -> "
        f"{'MET' if ingest >= 10_000 and ingest >= raw / 2 else 'NOT MET'}"
    )
    if rss is not None:
        print(f"  edgecore RSS after the run: {rss:.0f} MB")


if __name__ == "__main__":
    main()
