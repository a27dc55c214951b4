"""EventBus: the MQTT side of the edge. Feeds requests to the twin service, publishes replies.

Each burst of messages read from the socket is handled in memory at once, its writes go to the
group committer, and its replies are published only once they are in SQLite. Up to
MAX_INFLIGHT bursts may wait on commits; beyond that reading pauses (the broker buffers).
Replies leave in the order the requests arrived.

Subscriptions are KubeEdge's request topics plus the malformed shapes worth an error reply; none
of them matches a topic the edge publishes itself (`.../result`, `/delta`, `/document` are one
level deeper), so the edge never receives its own output.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from functools import partial

from devicetwin.events import Outbound
from devicetwin.payloads import MAX_PAYLOAD
from devicetwin.service import Handled, TwinService, now_ms
from devicetwin.topics import (
    mapper_presence_subscription,
    membership_get_topic,
    request_subscriptions,
)
from edgecore.metrics import EdgeMetrics
from kedge.backoff import Backoff
from kedge.mqtt import Burst, MqttConnection, MqttError, MqttSettings, stay_connected

log = logging.getLogger("kedge.eventbus")
MAX_PENDING = 10_000
MAX_INFLIGHT = 64
MAX_READ = 4 * MAX_PAYLOAD  # larger requests are answered from their size alone, never buffered


class EventBus:
    def __init__(self, service: TwinService, settings: MqttSettings, metrics: EdgeMetrics) -> None:
        self.service = service
        self.settings = settings
        self.metrics = metrics
        self.connected = asyncio.Event()
        self._connection: MqttConnection | None = None
        self._pending: list[Outbound] = []
        self._inflight = 0
        self._retry_wake = asyncio.Event()
        # who else hears every event (DMI mappers take their deltas and membership from here)
        self.observers: list[Callable[[list[Outbound]], None]] = []
        service.retries.on_change = self._retry_wake.set

    async def run(self) -> None:
        """Stay connected (reconnecting with a capped backoff whenever the broker goes away)
        and send the deltas whose retry is due."""
        retries = asyncio.create_task(self._retry_deltas(), name="delta retries")
        try:
            await self._stay_connected()
        finally:
            retries.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await retries

    async def _retry_deltas(self) -> None:
        """Sleeps until the next retry is due, or until a new one is scheduled earlier."""
        while True:
            await self.connected.wait()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._retry_wake.wait(), self.service.retries.wait())
            self._retry_wake.clear()
            if self.connected.is_set():
                self.publish(self.service.due_deltas())

    async def _stay_connected(self) -> None:
        node = self.service.node
        await stay_connected(
            lambda: MqttConnection(
                self.settings, f"edgecore-{node}", self._on_burst, max_frame=MAX_READ
            ),
            self._up,
            self._down,
            Backoff(0.1, 5.0),
            {"node": node},
        )

    async def _up(self, connection: MqttConnection) -> None:
        """Subscribed: send what waited, and every pending delta (a mapper may have missed it)."""
        node = self.service.node
        await connection.subscribe(
            [*request_subscriptions(), membership_get_topic(node),
             mapper_presence_subscription(node)]
        )  # fmt: skip
        self._connection = connection
        self.connected.set()
        self.metrics.mqtt_connected.set(1)
        broker = f"{self.settings.host}:{self.settings.port}"
        log.info("connected to MQTT broker", extra={"node": node, "broker": broker})
        pending, self._pending = self._pending, []
        self.publish([*pending, *self.service.all_deltas()])

    def _down(self, _connection: MqttConnection) -> None:
        self._connection = None
        self.connected.clear()
        self.metrics.mqtt_connected.set(0)

    def _on_burst(self, burst: Burst) -> None:
        handled = [self.service.handle(topic, payload) for topic, payload in burst]
        self._inflight += 1
        if self._inflight >= MAX_INFLIGHT and self._connection is not None:
            self._connection.pause_reading()
        committed = self.service.submit(self.service.take_batch())
        committed.add_done_callback(partial(self._committed, handled))

    def _committed(self, handled: list[Handled], committed: asyncio.Future[None]) -> None:
        """The burst's commit finished: publish its replies, or its 500s if it failed."""
        self._inflight -= 1
        if self._connection is not None:
            self._connection.resume_reading()
        if committed.exception() is not None:  # the service reloaded from disk already
            now = now_ms()
            handled = [item.failed(now) for item in handled]
        for (action, code), count in Counter((h.action, h.code) for h in handled).items():
            self.metrics.requests.labels(action, str(code)).inc(count)
        self.publish([reply for item in handled for reply in item.replies])

    def publish(self, messages: Iterable[Outbound]) -> None:
        """Publish at QoS 0 (KubeEdge's choice); hold them while the broker is away.

        Every (re)connect also republishes the deltas of all twins not in sync, so a delta
        lost while the broker was away still reaches its mapper.
        """
        messages = list(messages)
        for observer in self.observers:
            observer(messages)
        connection = self._connection
        sent = 0
        try:
            if connection is None:
                raise MqttError("not connected")
            for message in messages:
                connection.publish(message.topic, message.payload)
                sent += 1
        except MqttError:
            self._pending = [*self._pending, *messages[sent:]][-MAX_PENDING:]
        self.metrics.published.inc(sent)
