"""paho-mqtt driven by the asyncio event loop, built for bursts of small messages.

paho exposes its socket through `on_socket_*` callbacks; the loop watches the socket and calls
`loop_read`/`loop_write`/`loop_misc` (the technique aiomqtt uses). Unlike aiomqtt, which creates
a task per received message and a future per publish, this reads every buffered packet per
wake-up and hands them over as one list, and QoS 0 publishes just queue bytes for the writer.
Profiling the twin ingest showed aiomqtt's per-message machinery at about half of edgecore's CPU.

        socket readable --> loop_read() x N --> on_burst([(topic, payload), ...])
        publish() -------> paho out-queue --> socket writable --> loop_write()
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion

DEFAULT_PORT = 1883
MAX_READS_PER_WAKEUP = 512
CONNECT_TIMEOUT = 10.0
Burst = list[tuple[str, bytes]]


class MqttError(Exception):
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


class MqttConnection:
    """One connection; `run()` returns (or raises MqttError) when it ends."""

    def __init__(
        self,
        settings: MqttSettings,
        client_id: str,
        on_burst: Callable[[Burst], None],
        keepalive: int = 30,
    ) -> None:
        self.settings = settings
        self.keepalive = keepalive
        self._on_burst = on_burst
        self._loop = asyncio.get_running_loop()
        self._inbox: Burst = []
        self._paused = False
        self._sock: Any = None
        self._connected: asyncio.Future[None] = self._loop.create_future()
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self._acks: dict[int, asyncio.Future[None]] = {}
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or str(uuid.uuid4()),
            protocol=MQTTProtocolVersion.MQTTv311,
            clean_session=True,
        )
        if settings.username:
            client.username_pw_set(settings.username, settings.password)
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_message = lambda _c, _u, m: self._inbox.append((m.topic, bytes(m.payload)))
        client.on_subscribe = self._handle_suback
        client.on_socket_open = self._socket_open
        client.on_socket_close = self._socket_close
        client.on_socket_register_write = self._register_write
        client.on_socket_unregister_write = self._unregister_write
        self._client = client

    # ---- paho callbacks (may run on the connect executor thread) -------------------------

    def _threadsafe(self, func: Callable[..., Any], *args: Any) -> None:
        self._loop.call_soon_threadsafe(func, *args)

    def _socket_open(self, _c: paho.Client, _u: Any, sock: Any) -> None:
        self._sock = sock
        self._threadsafe(self._loop.add_reader, sock, self._readable)

    def _socket_close(self, _c: paho.Client, _u: Any, sock: Any) -> None:
        with contextlib.suppress(Exception):
            self._loop.remove_reader(sock)
            self._loop.remove_writer(sock)
        self._finish(MqttError("connection closed"))

    def _register_write(self, _c: paho.Client, _u: Any, sock: Any) -> None:
        self._threadsafe(self._loop.add_writer, sock, self._writable)

    def _unregister_write(self, _c: paho.Client, _u: Any, sock: Any) -> None:
        self._threadsafe(self._loop.remove_writer, sock)

    def _handle_connect(self, _c: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self._threadsafe(self._fail_connect, MqttError(f"broker refused connection: {reason}"))
        else:
            self._threadsafe(self._set_connected)

    def _set_connected(self) -> None:
        if not self._connected.done():
            self._connected.set_result(None)

    def _fail_connect(self, error: MqttError) -> None:
        if not self._connected.done():
            self._connected.set_exception(error)
        self._finish(error)

    def _handle_disconnect(self, _c: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._threadsafe(self._finish, MqttError(f"disconnected: {reason}"))

    def _handle_suback(self, _c: paho.Client, _u: Any, mid: int, _r: Any, _p: Any) -> None:
        future = self._acks.pop(mid, None)
        if future is not None and not future.done():
            future.set_result(None)

    def _finish(self, error: Exception) -> None:
        if not self._closed.done():
            self._closed.set_exception(error)
        for future in (self._connected, *self._acks.values()):
            if not future.done():
                future.set_exception(error)

    # ---- socket events ---------------------------------------------------------------------

    def _readable(self) -> None:
        """Read every packet the socket holds (bounded), then hand the burst over once."""
        for _ in range(MAX_READS_PER_WAKEUP):
            before = len(self._inbox)
            rc = self._client.loop_read()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._finish(MqttError(f"read failed: {paho.error_string(rc)}"))
                break
            if len(self._inbox) == before:  # nothing more buffered (or a non-PUBLISH packet)
                break
        if self._inbox:
            burst, self._inbox = self._inbox, []
            self._on_burst(burst)

    def _writable(self) -> None:
        rc = self._client.loop_write()
        if rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_AGAIN):
            self._finish(MqttError(f"write failed: {paho.error_string(rc)}"))

    def pause_reading(self) -> None:
        """Backpressure: stop reading until `resume_reading()` (the broker buffers for us)."""
        if not self._paused and self._sock is not None:
            self._paused = True
            self._loop.remove_reader(self._sock)

    def resume_reading(self) -> None:
        if self._paused and self._sock is not None and not self._closed.done():
            self._paused = False
            self._loop.add_reader(self._sock, self._readable)
            self._loop.call_soon(self._readable)

    # ---- public API ------------------------------------------------------------------------

    async def connect(self) -> None:
        try:
            await self._loop.run_in_executor(
                None, self._client.connect, self.settings.host, self.settings.port, self.keepalive
            )
        except OSError as exc:
            raise MqttError(
                f"cannot reach {self.settings.host}:{self.settings.port}: {exc}"
            ) from exc
        try:
            await asyncio.wait_for(asyncio.shield(self._connected), CONNECT_TIMEOUT)
        except TimeoutError as exc:
            raise MqttError("no CONNACK from the broker") from exc

    async def subscribe(self, topics: list[str]) -> None:
        rc, mid = self._client.subscribe([(topic, 0) for topic in topics])
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            raise MqttError(f"subscribe failed: {paho.error_string(rc)}")
        future = self._acks.setdefault(mid, self._loop.create_future())
        await asyncio.wait_for(future, CONNECT_TIMEOUT)

    def publish(self, topic: str, payload: bytes) -> None:
        """QoS 0, not retained (KubeEdge's choice); queued for the socket writer."""
        info = self._client.publish(topic, payload)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            raise MqttError(f"publish failed: {paho.error_string(info.rc)}")
        if info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN:
            raise MqttError("publish failed: not connected")

    async def run(self) -> None:
        """Keep the connection alive (pings) until it ends; always raises MqttError at the end."""
        while not self._closed.done():
            rc = self._client.loop_misc()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._finish(MqttError(f"connection lost: {paho.error_string(rc)}"))
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._closed), 1.0)
        await self._closed

    async def close(self) -> None:
        if not self._closed.done():
            if self._sock is not None:
                self._client.disconnect()
            self._finish(MqttError("closed"))
        with contextlib.suppress(MqttError):
            await self._closed
