"""A QoS 0 MQTT 3.1.1 client on asyncio, built for bursts of small messages.

Why not paho-mqtt or aiomqtt here: profiling the twin ingest showed aiomqtt's per-message task
and future at about half of edgecore's CPU, and paho's per-packet `recv` calls and per-publish
`MQTTMessageInfo` (a lock and a condition each) at about half of what remained. edgecore only
needs QoS 0 publish/subscribe, which is a handful of frames (`kedge.mqttwire`), so this client
parses every frame of a socket read at once and hands them over as one burst, and coalesces
publishes into one socket write per loop iteration. Tests and benchmarks talk to it with real
paho-mqtt clients through a real mosquitto.

    socket data --> FrameReader.feed() --> on_burst([(topic, payload), ...])
    publish() ----> out list --> one transport.write per loop iteration
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from kedge import mqttwire
from kedge.backoff import Backoff
from kedge.errors import TemporaryError

log = logging.getLogger("kedge.mqtt")
DEFAULT_PORT = 1883
CONNECT_TIMEOUT = 10.0
Burst = list[tuple[str, bytes]]


class MqttError(TemporaryError):
    """The broker refused us or the connection broke."""


@dataclass(frozen=True, slots=True)
class MqttSettings:
    host: str
    port: int = DEFAULT_PORT
    username: str | None = None
    password: str | None = None

    def url(self) -> str:
        auth = f"{quote(self.username)}:{quote(self.password or '')}@" if self.username else ""
        return f"mqtt://{auth}{self.host}:{self.port}"


def parse_mqtt_url(url: str) -> MqttSettings:
    """`mqtt://[user:password@]host[:port]` (or `tcp://`) -> settings; ValueError if not."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
        raise ValueError(f"{url!r} is not mqtt://[user:password@]host[:port]")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError as exc:
        raise ValueError(f"{url!r} has an invalid port") from exc
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return MqttSettings(parts.hostname, port, user, password)


class MqttConnection(asyncio.Protocol):
    """One connection; `run()` keeps it alive and raises MqttError when it ends."""

    def __init__(
        self,
        settings: MqttSettings,
        client_id: str,
        on_burst: Callable[[Burst], None],
        keepalive: int = 30,
        will: mqttwire.Will | None = None,
        max_frame: int = mqttwire.MAX_FRAME,
    ) -> None:
        """Publishes longer than `max_frame` reach `on_burst` as an empty `Oversized` payload
        (its size kept), never read into memory nor a reason to drop the connection."""
        self.settings = settings
        self.client_id = client_id
        self.keepalive = keepalive
        self.will = will
        self._on_burst = on_burst
        self._loop = asyncio.get_running_loop()
        self._reader = mqttwire.FrameReader(max_frame)
        self._transport: asyncio.Transport | None = None
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._connack: asyncio.Future[int] = self._loop.create_future()
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self._subacks: dict[int, asyncio.Future[bytes]] = {}
        self._next_id = 0
        self._last_heard = self._loop.time()

    # ---- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._last_heard = self._loop.time()
        try:
            frames = self._reader.feed(data)
            burst = [
                mqttwire.parse_publish(f)
                if f.type == mqttwire.PUBLISH
                else (f.body.decode(errors="replace"), mqttwire.oversized_payload(f))
                for f in frames
                if f.type in (mqttwire.PUBLISH, mqttwire.OVERSIZED)
            ]
        except mqttwire.ProtocolError as exc:
            self._fail(MqttError(f"broker sent an invalid frame: {exc}"))
            return
        for item in frames:
            if item.type not in (mqttwire.PUBLISH, mqttwire.OVERSIZED):
                self._control(item)
        if burst:
            self._on_burst(burst)

    def _control(self, item: mqttwire.Frame) -> None:
        if item.type == mqttwire.CONNACK and len(item.body) == 2:
            if not self._connack.done():
                self._connack.set_result(item.body[1])
        elif item.type == mqttwire.SUBACK and len(item.body) >= 2:
            (packet_id,) = struct.unpack_from("!H", item.body)
            future = self._subacks.pop(packet_id, None)
            if future is not None and not future.done():
                future.set_result(item.body[2:])

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(MqttError(f"connection lost: {exc}" if exc else "connection closed"))

    def _fail(self, error: MqttError) -> None:
        _reject(self._connack, error)
        _reject(self._closed, error)
        for future in self._subacks.values():
            _reject(future, error)
        if self._transport is not None:
            self._transport.abort()

    # ---- writing ---------------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        self._out.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        out, self._out = self._out, []
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(b"".join(out))

    def pause_reading(self) -> None:
        """Backpressure: stop reading until `resume_reading()` (the broker buffers for us)."""
        if self._transport is not None and self._transport.is_reading():
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    # ---- public API ------------------------------------------------------------------------

    async def connect(self) -> None:
        s = self.settings
        try:
            await asyncio.wait_for(
                self._loop.create_connection(lambda: self, s.host, s.port), CONNECT_TIMEOUT
            )
        except (OSError, TimeoutError) as exc:
            raise MqttError(f"cannot reach {s.host}:{s.port}: {exc}") from exc
        self._send(
            mqttwire.connect(self.client_id, self.keepalive, s.username, s.password, self.will)
        )
        try:
            code = await asyncio.wait_for(asyncio.shield(self._connack), CONNECT_TIMEOUT)
        except TimeoutError as exc:
            raise MqttError("no CONNACK from the broker") from exc
        if code != 0:
            reason = mqttwire.CONNACK_REASONS.get(code, f"code {code}")
            self._fail(MqttError(f"broker refused connection: {reason}"))
            raise MqttError(f"broker refused connection: {reason}")

    async def subscribe(self, topics: list[str]) -> None:
        self._next_id = self._next_id % 65535 + 1
        future: asyncio.Future[bytes] = self._loop.create_future()
        self._subacks[self._next_id] = future
        self._send(mqttwire.subscribe(self._next_id, topics))
        codes = await asyncio.wait_for(future, CONNECT_TIMEOUT)
        refused = [t for t, c in zip(topics, codes, strict=False) if c == 0x80]
        if refused or len(codes) != len(topics):
            raise MqttError(f"broker refused subscriptions: {refused or topics}")

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """QoS 0, not retained unless asked (KubeEdge's choice); written with the loop
        iteration's others."""
        if self._transport is None or self._closed.done():
            raise MqttError("publish failed: not connected")
        self._send(mqttwire.publish(topic, payload, retain))

    async def run(self) -> None:
        """Ping every keepalive/2; raise MqttError when the connection ends or goes silent."""
        interval = self.keepalive / 2
        while not self._closed.done():
            if self._loop.time() - self._last_heard > self.keepalive * 1.5:
                self._fail(MqttError("broker silent for longer than the keepalive"))
                break
            self._send(mqttwire.PINGREQ_FRAME)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._closed), interval)
        await self._closed

    async def close(self) -> None:
        if not self._closed.done() and self._transport is not None:
            self._flush()
            self._transport.write(mqttwire.DISCONNECT_FRAME)
            self._transport.close()
        _reject(self._closed, MqttError("closed"))
        with contextlib.suppress(MqttError):
            await self._closed


async def stay_connected(
    connect: Callable[[], MqttConnection],
    up: Callable[[MqttConnection], Awaitable[None]],
    down: Callable[[MqttConnection], None],
    backoff: Backoff,
    who: dict[str, str],
) -> None:
    """Connect, `up(connection)`, serve until the connection ends, `down(connection)`, and
    again after a capped backoff: until cancelled. `who` names the client in the logs."""
    while True:
        connection = connect()
        try:
            await connection.connect()
            await up(connection)
            backoff.reset()
            await connection.run()
        except MqttError as exc:
            log.warning("MQTT connection lost: %s", exc, extra=who)
        finally:
            down(connection)
            await connection.close()
        await backoff.pause()  # reconnect pacing


def _reject(future: asyncio.Future[Any], error: Exception) -> None:
    if not future.done():
        future.set_exception(error)
