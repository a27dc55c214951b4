"""pushMethod: copy each polled value to an MQTT topic or an HTTP endpoint besides the twin.

Body (JSON, both methods):

    {"device": "ns/name", "namespace": "ns", "name": "name", "property": "temperature",
     "value": "23.5", "type": "float", "timestamp": 1718000000000}

Keys follow KubeEdge's `pushMethod`: `mqtt {address, topic, qos, retained}` (address
`tcp://host:port` or `mqtt://user:password@host:port`) and `http {hostName, port, requestPath,
timeout}` (hostName may carry the scheme; timeout in ms). Pushes run on their own task through a
bounded queue, so a slow endpoint never delays polling; when it falls behind, the oldest values
are dropped and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from mappers.driver import VisitorError

log = logging.getLogger("kedge.mapper.push")
QUEUE_LIMIT = 1000
JSON = dict[str, Any]


class MqttPush:
    """One paho client per broker address (paho handles QoS 1/2 retries on its own thread)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        address = str(config.get("address") or "")
        parts = urlsplit(address if "://" in address else f"tcp://{address}")
        if parts.scheme not in ("tcp", "mqtt") or not parts.hostname:
            raise VisitorError(f"pushMethod.mqtt.address: {address!r} is not tcp://host:port")
        self.topic = str(config.get("topic") or "")
        if not self.topic or "#" in self.topic or "+" in self.topic:
            raise VisitorError("pushMethod.mqtt.topic: needs a topic without wildcards")
        self.qos = int(config.get("qos", 0))
        if self.qos not in (0, 1, 2):
            raise VisitorError(f"pushMethod.mqtt.qos: {self.qos} is not 0, 1 or 2")
        self.retained = bool(config.get("retained", False))
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"push-{uuid.uuid4()}")
        if parts.username:
            self.client.username_pw_set(parts.username, parts.password)
        self.client.connect_async(parts.hostname, parts.port or 1883)
        self.client.loop_start()

    async def send(self, body: bytes) -> None:
        info = self.client.publish(self.topic, body, qos=self.qos, retain=self.retained)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise ConnectionError(f"MQTT push to {self.topic} failed: {mqtt.error_string(info.rc)}")

    async def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class HttpPush:
    def __init__(self, config: Mapping[str, Any]) -> None:
        host = str(config.get("hostName") or "")
        if not host:
            raise VisitorError("pushMethod.http.hostName: required")
        base = host if "://" in host else f"http://{host}"
        port = config.get("port")
        path = str(config.get("requestPath") or "/")
        self.url = f"{base}:{int(port)}{path}" if port else f"{base}{path}"
        timeout_ms = float(config.get("timeout") or 5000)
        self.client = httpx.AsyncClient(timeout=timeout_ms / 1000)

    async def send(self, body: bytes) -> None:
        response = await self.client.post(
            self.url, content=body, headers={"content-type": "application/json"}
        )
        response.raise_for_status()

    async def close(self) -> None:
        await self.client.aclose()


NOT_SERVED = ("dbMethod", "otel")  # KubeEdge's push methods kedge's mappers do not implement


def _describe(key: str, config: Any) -> str:
    if key == "dbMethod" and isinstance(config, Mapping) and config:
        return f"dbMethod ({', '.join(sorted(map(str, config)))})"
    return key


class Pusher:
    """The push targets of one device: a queue and one task that drains it."""

    def __init__(self, device_id: str, methods: Mapping[str, Mapping[str, Any]]) -> None:
        self.device_id = device_id
        self.dropped = 0
        self._targets: dict[str, MqttPush | HttpPush] = {}
        self.unsupported: dict[str, str] = {}  # property -> what of its pushMethod is not served
        for prop, method in methods.items():
            if "mqtt" in method:
                self._targets[prop] = MqttPush(method["mqtt"])
            elif "http" in method:
                self._targets[prop] = HttpPush(method["http"])
            elif not any(key in method for key in NOT_SERVED):
                raise VisitorError(f"{prop}: pushMethod supports mqtt and http, got {list(method)}")
            missing = [_describe(key, method[key]) for key in NOT_SERVED if key in method]
            if missing:
                self.unsupported[prop] = (
                    f"pushMethod {', '.join(missing)} is not supported by kedge's mappers; "
                    "readings are not sent there"
                )
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(QUEUE_LIMIT)
        self._task = asyncio.create_task(self._drain(), name=f"push {device_id}")

    def push(self, prop: str, value: str, type_: str, timestamp: int) -> None:
        if prop not in self._targets:
            return
        namespace, _, name = self.device_id.partition("/")
        body = orjson.dumps(
            {
                "device": self.device_id,
                "namespace": namespace,
                "name": name,
                "property": prop,
                "value": value,
                "type": type_,
                "timestamp": timestamp,
            }
        )
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning(
                    "push target too slow: %d readings dropped so far",
                    self.dropped,
                    extra={"device": self.device_id},
                )
        self._queue.put_nowait((prop, body))

    async def _drain(self) -> None:
        while True:
            prop, body = await self._queue.get()
            try:
                await self._targets[prop].send(body)
            except (httpx.HTTPError, ConnectionError, OSError) as exc:
                log.warning("push of %s failed: %s", prop, exc, extra={"device": self.device_id})

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        for target in self._targets.values():
            await target.close()
