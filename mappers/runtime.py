"""Mapper runtime: devices learned over MQTT, each served by a worker (`mappers.worker`).

    membership/get {protocol} --> result: start a worker per device of our protocol
    membership/updated        --> start / update in place / restart (new address) / stop, live
    twin/update/delta         --> the device's worker writes it
    mapper registry           --> a retained "alive" message, and the same topic emptied by
                                  the broker (last will) when the mapper dies, so the edge
                                  notices a dead mapper at once

A mapper knows MQTT and its device only: it never talks to edgecore except over the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from devicetwin.topics import (
    ANY_DEVICE,
    delta_topic,
    mapper_presence_topic,
    membership_get_topic,
    membership_result_topic,
    membership_updated_topic,
    parse_delta_topic,
)
from kedge.backoff import Backoff
from kedge.mqtt import Burst, MqttConnection, MqttError, MqttSettings, stay_connected
from kedge.mqttwire import Will
from mappers.driver import DriverFactory
from mappers.worker import DeviceWorker, needs_restart

log = logging.getLogger("kedge.mapper")
KEEPALIVE = 10  # s: a hung mapper is declared dead by the broker within 15 s
JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class MapperSettings:
    protocol: str
    node: str
    mqtt: MqttSettings
    offline_after: int = 3  # unreachable polls in a row before the device is `offline`
    max_backoff: float = 30.0


class Mapper:
    """All devices of one protocol on one node."""

    def __init__(self, settings: MapperSettings, driver_factory: DriverFactory) -> None:
        self.settings = settings
        self.driver_factory = driver_factory
        self.workers: dict[str, DeviceWorker] = {}
        self._membership_changed = 0  # timestamp (ms) of the newest membership update applied
        self._asked = ""  # event_id of our membership/get: results answer it, or someone else
        self._connection: MqttConnection | None = None
        self._stopping: set[asyncio.Task[None]] = set()
        self.instance = uuid.uuid4().hex[:12]  # this process

    def publish(self, topic: str, body: JSON) -> None:
        """QoS 0: a report lost while the broker is away is superseded by the next one."""
        if self._connection is not None:
            with contextlib.suppress(MqttError):
                self._connection.publish(topic, orjson.dumps(body))

    async def run(self) -> None:
        node = self.settings.node
        presence = mapper_presence_topic(node, self.settings.protocol, self.instance)

        def down(connection: MqttConnection) -> None:
            self._connection = None
            with contextlib.suppress(MqttError):  # leaving on purpose: no will, so say so
                connection.publish(presence, b"", retain=True)

        try:
            await stay_connected(
                lambda: MqttConnection(
                    self.settings.mqtt, f"mapper-{self.instance}-{node}-{uuid.uuid4().hex[:8]}",
                    self._on_burst, keepalive=KEEPALIVE,
                    will=Will(presence, b"", retain=True),  # the broker clears us if we die
                ),
                lambda connection: self._register(connection, presence),
                down,
                Backoff(0.1, 5.0),
                {"node": node},
            )  # fmt: skip
        finally:
            for worker in list(self.workers.values()):
                await worker.stop()

    async def _register(self, connection: MqttConnection, presence: str) -> None:
        """Subscribe, say we are alive (retained, so an edgecore starting later learns it), ask
        for our devices, and repeat our devices' states (the edge may have marked them unknown
        while we were away)."""
        node = self.settings.node
        protocol = self.settings.protocol
        await connection.subscribe(
            [
                membership_result_topic(node, protocol),
                membership_updated_topic(node, protocol),
                delta_topic(ANY_DEVICE),
            ]
        )
        self._connection = connection
        alive = {"since": time.time_ns() // 1_000_000}
        connection.publish(presence, orjson.dumps(alive), retain=True)
        self._asked = str(uuid.uuid4())
        self.publish(
            membership_get_topic(node),
            {"event_id": self._asked, "protocol": self.settings.protocol},
        )
        for worker in self.workers.values():
            worker.announce()

    def _on_burst(self, burst: Burst) -> None:
        for topic, payload in burst:
            try:
                body = orjson.loads(payload)
                if not isinstance(body, dict):
                    raise ValueError("not a JSON object")
                self._dispatch(topic, body)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                # an untrusted payload whose structure is wrong: drop it, keep the connection
                log.warning("ignored malformed message: %r", exc, extra={"topic": topic})

    def _ours(self, entry: JSON) -> bool:
        protocol = (entry.get("spec") or {}).get("protocol", {}).get("protocolName")
        return bool(protocol == self.settings.protocol)

    @staticmethod
    def _entries(body: JSON, key: str) -> list[JSON]:
        """`body[key]` as a list of device entries, or ValueError if it is not one."""
        entries = body.get(key, [])
        if not isinstance(entries, list) or not all(
            isinstance(e, dict) and isinstance(e.get("id"), str) for e in entries
        ):
            raise ValueError(f"{key} must be a list of devices with an id")
        return entries

    def _dispatch(self, topic: str, body: JSON) -> None:
        node = self.settings.node
        protocol = self.settings.protocol
        if topic == membership_result_topic(node, protocol):
            if body.get("event_id") != self._asked:
                return  # the answer to another mapper's request (another protocol's devices)
            stamp = body.get("timestamp")
            if isinstance(stamp, int) and stamp <= self._membership_changed:
                return  # a snapshot taken before an update already applied (our answer was
                # published after it): applying it would undo that update
            wanted = {e["id"]: e for e in self._entries(body, "devices") if self._ours(e)}
            for device_id in set(self.workers) - set(wanted):
                self._stop(device_id)
            for entry in wanted.values():
                self._start(entry)
        elif topic == membership_updated_topic(node, protocol):
            stamp = body.get("timestamp")
            if isinstance(stamp, int):
                self._membership_changed = max(self._membership_changed, stamp)
            removed = self._entries(body, "removed_devices")
            changed = [
                *self._entries(body, "added_devices"),
                *self._entries(body, "updated_devices"),
            ]
            for entry in removed:
                self._stop(entry["id"])
            for entry in changed:
                if self._ours(entry):
                    self._start(entry)
                else:
                    self._stop(str(entry["id"]))
        elif (delta_for := parse_delta_topic(topic)) is not None:
            worker = self.workers.get(delta_for)
            if worker is not None and isinstance(body.get("delta"), dict):
                worker.on_delta(body["delta"])

    def _start(self, entry: JSON) -> None:
        """Start a worker; for a known device, apply a new spec in place, or restart the worker
        only when the new spec needs a new connection (another address, other subscriptions)."""
        device_id, spec = str(entry["id"]), entry.get("spec") or {}
        current = self.workers.get(device_id)
        if current is not None and current.spec == spec:
            return
        if current is not None and not needs_restart(current.spec, spec):
            current.update(spec)
            return
        if current is not None:
            self._stop(device_id)
        self.workers[device_id] = DeviceWorker(self, entry)
        log.info("device added", extra={"device": device_id, "node": self.settings.node})

    def _stop(self, device_id: str) -> None:
        worker = self.workers.pop(device_id, None)
        if worker is not None:
            task = asyncio.get_running_loop().create_task(worker.stop())
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)
            log.info("device removed", extra={"device": device_id, "node": self.settings.node})
