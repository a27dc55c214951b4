"""Closed-loop MQTT load: a publisher process and a subscriber process sharing one counter.

The publisher keeps at most `window` messages unanswered (sent minus received, read from shared
memory); the subscriber counts what comes back. Splitting them over two processes lets the
client outrun what a single paho client can do, so the figures measure the broker and edgecore.
The same client measures raw broker pass-through and edgecore ingest.
"""

from __future__ import annotations

import multiprocessing as mp
import time
import uuid
from collections.abc import Sequence
from multiprocessing.sharedctypes import Synchronized

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

WINDOW = 2000
SLICE = 10.0


Auth = tuple[str, str] | None  # (user, password) on a broker with identities


def _client(port: int, auth: Auth = None) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{uuid.uuid4()}")
    client.max_queued_messages_set(0)
    if auth is not None:
        client.username_pw_set(*auth)
    client.connect("127.0.0.1", port)
    return client


def _subscriber(
    port: int,
    topic: str,
    received: Synchronized[int],
    errors: Synchronized[int],
    ready: Synchronized[int],
    stop: Synchronized[int],
    auth: Auth = None,
) -> None:
    client = _client(port, auth)

    def on_message(_c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        if b'"code"' in message.payload[:80]:
            errors.value += 1
        received.value += 1

    client.on_message = on_message
    client.on_subscribe = lambda *_a: setattr(ready, "value", 1)
    client.subscribe(topic)
    while not stop.value:
        client.loop(0.1)
    client.disconnect()


def _publisher(
    port: int,
    messages: Sequence[tuple[str, bytes]],
    window: int,
    seconds: float,
    received: Synchronized[int],
    sent: Synchronized[int],
    auth: Auth = None,
) -> None:
    client = _client(port, auth)
    client.loop_start()
    count, n, end = 0, len(messages), time.monotonic() + seconds
    while time.monotonic() < end:
        if count - received.value >= window:
            time.sleep(0.0005)
            continue
        topic, payload = messages[count % n]
        client.publish(topic, payload)
        count += 1
        if count % 256 == 0:
            sent.value = count
    sent.value = count
    client.loop_stop()
    client.disconnect()


def measure(
    port: int,
    subscribe: str,
    messages: Sequence[tuple[str, bytes]],
    seconds: float,
    warmup: float,
    window: int = WINDOW,
    publisher: Auth = None,
    subscriber: Auth = None,
) -> tuple[float, int, list[float]]:
    """Replies/s over `seconds` after `warmup`, error replies seen, and the rate per slice;
    `publisher` and `subscriber` are the two clients' identities, on a broker with ACLs."""
    ctx = mp.get_context("spawn")
    received, errors, ready, stop, sent = (ctx.Value("q", 0, lock=False) for _ in range(5))
    sub = ctx.Process(
        target=_subscriber, args=(port, subscribe, received, errors, ready, stop, subscriber)
    )
    sub.start()
    deadline = time.monotonic() + 30
    while not ready.value:
        if time.monotonic() > deadline or not sub.is_alive():
            raise RuntimeError("bench subscriber did not subscribe")
        time.sleep(0.01)
    pub = ctx.Process(
        target=_publisher,
        args=(port, messages, window, warmup + seconds, received, sent, publisher),
    )
    pub.start()
    time.sleep(warmup)  # benchmark pacing, not synchronisation
    start_count, start = received.value, time.monotonic()
    slices, last_count, last = [], start_count, start
    while (now := time.monotonic()) < start + seconds:
        time.sleep(min(SLICE, start + seconds - now))  # benchmark pacing
        count, now = received.value, time.monotonic()
        slices.append((count - last_count) / (now - last))
        last_count, last = count, now
    rate = (received.value - start_count) / (time.monotonic() - start)
    pub.join(30)
    deadline = time.monotonic() + 30
    while received.value < sent.value and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.value = 1
    sub.join(10)
    return rate, int(errors.value), slices
