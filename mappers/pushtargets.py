"""Where a pushMethod sends readings: an MQTT topic or an HTTP endpoint (this module), or a
database (mappers.dbpush). A target sends a batch; raising ConnectionError, OSError or
TimeoutError means "keep them and try again later", PushRefused means "these will never be taken".

MQTT and HTTP bodies are JSON, one reading each:

    {"device": "ns/name", "namespace": "ns", "name": "name", "property": "temperature",
     "value": "23.5", "type": "float", "timestamp": 1718000000000}

Keys follow KubeEdge's `pushMethod`: `mqtt {address, topic, qos, retained}` (address
`tcp://host:port` or `mqtt://user:password@host:port`) and `http {hostName, port, requestPath,
timeout}` (hostName may carry the scheme; timeout in ms).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from mappers.driver import VisitorError


class PushRefused(Exception):
    """The target rejected these readings for good (a 4xx, a type the database will not take)."""


@dataclass(frozen=True, slots=True)
class Reading:
    device: str  # ns/name
    prop: str
    value: str
    type: str
    timestamp: int  # ms since the epoch

    @property
    def namespace(self) -> str:
        return self.device.partition("/")[0]

    @property
    def name(self) -> str:
        return self.device.partition("/")[2]

    def json(self) -> bytes:
        return orjson.dumps(
            {"device": self.device, "namespace": self.namespace, "name": self.name,
             "property": self.prop, "value": self.value, "type": self.type,
             "timestamp": self.timestamp}
        )  # fmt: skip


class PushTarget(Protocol):
    batch: int  # readings per send: a refusal drops the whole batch

    async def send(self, readings: Sequence[Reading]) -> None: ...

    async def close(self) -> None: ...


class MqttPush:
    """One paho client per target (paho handles QoS 1/2 retries on its own thread)."""

    batch = 1

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

    async def send(self, readings: Sequence[Reading]) -> None:
        for reading in readings:
            info = self.client.publish(
                self.topic, reading.json(), qos=self.qos, retain=self.retained
            )
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                raise ConnectionError(f"MQTT push to {self.topic}: {mqtt.error_string(info.rc)}")

    async def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class HttpPush:
    batch = 1

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

    async def send(self, readings: Sequence[Reading]) -> None:
        for reading in readings:
            try:
                response = await self.client.post(
                    self.url, content=reading.json(), headers={"content-type": "application/json"}
                )
            except httpx.HTTPError as exc:  # connection refused, timeouts: the endpoint is away
                raise ConnectionError(f"HTTP push to {self.url}: {exc!r}") from exc
            if response.status_code >= 500:
                raise ConnectionError(f"HTTP push to {self.url}: {response.status_code}")
            if response.status_code >= 400:
                raise PushRefused(f"HTTP push to {self.url}: {response.status_code}")

    async def close(self) -> None:
        await self.client.aclose()
