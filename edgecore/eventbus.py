"""EventBus: the MQTT side of the edge. Feeds requests to the twin service, publishes replies.

Messages are taken in bursts (whatever is queued, up to MAX_BURST): each burst is handled in
memory at once, its writes go to the group committer, and its replies are published only once
they are in SQLite. Several bursts can wait on commits at a time (MAX_INFLIGHT); replies leave
in the order the requests arrived.

Subscriptions use MQTT v5 `noLocal`, so the edge never receives its own `/result`, `/delta` and
`/document` publications back, while `$hw/events/device/#` still catches malformed topics that
deserve an error reply.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

import aiomqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

from devicetwin.service import Handled, Outbound, TwinService
from devicetwin.store import Batch
from devicetwin.topics import DEVICE_SUBSCRIPTION, membership_get_topic
from edgecore.config import MqttSettings
from edgecore.metrics import EdgeMetrics

log = logging.getLogger("kedge.eventbus")
MAX_BURST = 512
MAX_QUEUED = 100_000
MAX_PENDING = 10_000
MAX_INFLIGHT = 64


class EventBus:
    def __init__(self, service: TwinService, settings: MqttSettings, metrics: EdgeMetrics) -> None:
        self.service = service
        self.settings = settings
        self.metrics = metrics
        self.connected = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self._pending: list[Outbound] = []
        self._slots = asyncio.Semaphore(MAX_INFLIGHT)
        self._finishing: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Stay connected: reconnect with a capped backoff whenever the broker goes away."""
        backoff = 0.1
        node = self.service.node
        while True:
            try:
                async with aiomqtt.Client(
                    self.settings.host,
                    self.settings.port,
                    username=self.settings.username,
                    password=self.settings.password,
                    identifier=f"edgecore-{node}",
                    protocol=aiomqtt.ProtocolVersion.V5,
                    max_queued_incoming_messages=MAX_QUEUED,
                ) as client:
                    options = SubscribeOptions(qos=0, noLocal=True)
                    await client.subscribe(DEVICE_SUBSCRIPTION, options=options)
                    await client.subscribe(membership_get_topic(node), options=options)
                    self._client = client
                    self.connected.set()
                    self.metrics.mqtt_connected.set(1)
                    log.info(
                        "connected to MQTT broker",
                        extra={
                            "node": node,
                            "broker": f"{self.settings.host}:{self.settings.port}",
                        },
                    )
                    backoff = 0.1
                    pending, self._pending = self._pending, []
                    await self.publish([*pending, *self.service.all_deltas()])
                    await self._consume(client)
            except aiomqtt.MqttError as exc:
                log.warning("MQTT connection lost: %s", exc, extra={"node": node})
            finally:
                self._client = None
                self.connected.clear()
                self.metrics.mqtt_connected.set(0)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def _consume(self, client: aiomqtt.Client) -> None:
        messages = client.messages
        async for first in messages:
            burst = [first]
            while len(messages) and len(burst) < MAX_BURST:
                burst.append(await anext(messages))
            handled = [self.service.handle(m.topic.value, _body(m)) for m in burst]
            await self._slots.acquire()
            task = asyncio.create_task(self._finish(handled, self.service.take_batch()))
            self._finishing.add(task)
            task.add_done_callback(self._finishing.discard)

    async def _finish(self, handled: list[Handled], batch: Batch) -> None:
        """Wait for the burst's commit, then publish its replies (or its 500s)."""
        try:
            try:
                await self.service.commit(batch)
            except Exception:  # the service reloaded from disk; tell every client
                handled = [
                    Handled(h.action, 500, [h.on_failure]) if h.on_failure else h for h in handled
                ]
            for item in handled:
                self.metrics.requests.labels(item.action, str(item.code)).inc()
            await self.publish([reply for item in handled for reply in item.replies])
        except aiomqtt.MqttError as exc:
            log.warning("replies not published: %s", exc, extra={"node": self.service.node})
        finally:
            self._slots.release()

    async def publish(self, messages: Iterable[Outbound]) -> None:
        """Publish at QoS 0 (KubeEdge's choice); hold them until connected if the broker is away.

        Every (re)connect also republishes the pending deltas of all devices, so a delta lost
        while the broker was away still reaches its mapper.
        """
        messages = list(messages)
        client = self._client
        if client is None:
            self._pending = [*self._pending, *messages][-MAX_PENDING:]
            return
        await asyncio.gather(*(client.publish(m.topic, m.payload) for m in messages))
        self.metrics.published.inc(len(messages))


def _body(message: aiomqtt.Message) -> bytes:
    payload = message.payload
    return payload if isinstance(payload, bytes) else str(payload or "").encode()
