"""Mapper runtime: devices learned over MQTT, polled through a Driver, twins and state reported.

    membership/get {protocol} --> result: start a worker per device of our protocol
    membership/updated        --> start / restart (spec changed) / stop workers, live
    twin/update/delta         --> worker writes at once, reads back, reports
    worker: poll each property every collectCycle; report on change (optional `deadband`
            visitor key) or every reportCycle; `offline` after N unreachable polls in a row,
            then reconnect with capped exponential backoff, forever

A mapper knows MQTT and its device only: it never talks to edgecore except over the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson

from devicetwin.topics import (
    DEVICE_PREFIX,
    membership_get_topic,
    membership_result_topic,
    membership_updated_topic,
)
from kedge.mqtt import Burst, MqttConnection, MqttError, MqttSettings
from mappers.driver import (
    DeviceError,
    DeviceRejected,
    DeviceUnreachable,
    Driver,
    PropertyConfig,
    Subscribing,
    VisitorError,
)
from mappers.push import Pusher

log = logging.getLogger("kedge.mapper")
SUBSCRIBED_POLL = 5.0  # seconds between liveness polls of subscribed properties
DriverFactory = Callable[[Mapping[str, Any]], Driver]
JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class MapperSettings:
    protocol: str
    node: str
    mqtt: MqttSettings
    offline_after: int = 3  # unreachable polls in a row before the device is `offline`
    max_backoff: float = 30.0


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _changed(prop: PropertyConfig, old: str | None, new: str) -> bool:
    if old is None:
        return True
    deadband = prop.visitor.get("deadband")
    if deadband is None or prop.type not in ("int", "float", "double"):
        return old != new
    try:
        return abs(float(new) - float(old)) > float(deadband)
    except ValueError:
        return old != new


def pending_desired(entry: JSON) -> dict[str, str]:
    """Desired values a membership entry's device does not show yet (a mapper starting late)."""
    pending = {}
    for name, twin in (entry.get("twin") or {}).items():
        expected = (twin.get("expected") or {}).get("value")
        actual = (twin.get("actual") or {}).get("value")
        if expected and expected != actual:
            pending[name] = expected
    return pending


class DeviceWorker:
    """Polls one device and applies its deltas; one asyncio task."""

    def __init__(self, mapper: Mapper, entry: JSON) -> None:
        self.mapper = mapper
        self.id = str(entry["id"])
        self.spec = entry.get("spec") or {}
        self.properties = {
            p.name: p for p in map(PropertyConfig.from_spec, self.spec.get("properties", []))
        }
        self._deltas: dict[str, str] = pending_desired(entry)
        self._wake = asyncio.Event()
        self._reported: dict[str, tuple[str, float]] = {}
        self._state = ""
        self._task = asyncio.create_task(self._run(), name=f"device {self.id}")

    def on_delta(self, delta: Mapping[str, str]) -> None:
        self._deltas.update({k: v for k, v in delta.items() if isinstance(v, str)})
        self._wake.set()

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def _set_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            log.info("device %s", state, extra={"device": self.id})
            self.mapper.publish(
                f"{DEVICE_PREFIX}{self.id}/state/update",
                {"event_id": "", "timestamp": _now_ms(), "state": state},
            )

    def _report(self, values: dict[str, str]) -> None:
        if not values:
            return
        now = time.monotonic()
        twin = {}
        for name, value in values.items():
            self._reported[name] = (value, now)
            twin[name] = {
                "actual": {"value": value},
                "metadata": {"type": self.properties[name].type},
            }
        self.mapper.publish(
            f"{DEVICE_PREFIX}{self.id}/twin/update",
            {"event_id": "", "timestamp": _now_ms(), "twin": twin},
        )

    def _due_report(self, prop: PropertyConfig, value: str, now: float) -> bool:
        if not prop.report_to_cloud:
            return False
        last = self._reported.get(prop.name)
        if last is None or _changed(prop, last[0], value):
            return True
        return now - last[1] >= prop.report_cycle_ms / 1000

    async def _apply_deltas(self, driver: Driver) -> dict[str, str]:
        deltas, self._deltas = self._deltas, {}
        readback = {}
        for name, desired in deltas.items():
            prop = self.properties.get(name)
            if prop is None or prop.access_mode == "ReadOnly":
                log.warning(
                    "delta for read-only or unknown property %s ignored",
                    name,
                    extra={"device": self.id},
                )
                continue
            try:
                await driver.write(prop, desired)
                readback[name] = await driver.read(prop)
            except (DeviceRejected, VisitorError) as exc:
                log.warning(
                    "write of %s=%s failed: %s", name, desired, exc, extra={"device": self.id}
                )
        return readback

    def _on_value(self, pusher: Pusher, name: str, value: str) -> None:
        """A value the device sent by itself (subscription): push it, report if due."""
        prop = self.properties.get(name)
        if prop is None:
            return
        pusher.push(name, value, prop.type, _now_ms())
        if self._due_report(prop, value, time.monotonic()):
            self._report({name: value})

    async def _subscribe(self, driver: Driver, pusher: Pusher) -> bool:
        """Subscribe the properties that ask for it; True if the device now pushes them."""
        wanted = [p for p in self.properties.values() if p.subscribed]
        if not wanted or not isinstance(driver, Subscribing):
            return False
        await driver.subscribe(wanted, partial(self._on_value, pusher))
        return True

    def _interval(self, prop: PropertyConfig, subscribed: bool) -> float:
        """Seconds to the next poll; subscribed properties are polled only as a liveness check."""
        if subscribed and prop.subscribed:
            return max(prop.report_cycle_ms / 1000, SUBSCRIBED_POLL)
        return prop.collect_cycle_ms / 1000

    async def _poll(
        self, driver: Driver, due: list[PropertyConfig], pusher: Pusher
    ) -> dict[str, str]:
        now, report = time.monotonic(), {}
        for prop in due:
            try:
                value = await driver.read(prop)
            except (DeviceRejected, VisitorError) as exc:
                log.warning("read of %s failed: %s", prop.name, exc, extra={"device": self.id})
                continue
            pusher.push(prop.name, value, prop.type, _now_ms())
            if self._due_report(prop, value, now):
                report[prop.name] = value
        return report

    def _unservable(self, error: DeviceError) -> None:
        log.error("device cannot be served: %s", error, extra={"device": self.id})
        self._set_state("unhealthy")

    async def _run(self) -> None:
        try:
            driver = self.mapper.driver_factory(self.spec.get("protocol", {}).get("configData", {}))
        except DeviceError as exc:
            self._unservable(exc)
            return
        try:
            pusher = Pusher(
                self.id, {p.name: p.push_method for p in self.properties.values() if p.push_method}
            )
        except DeviceError as exc:
            await driver.close()
            self._unservable(exc)
            return
        loop = asyncio.get_running_loop()
        next_due = dict.fromkeys(self.properties, 0.0)
        failures, backoff, subscribed = 0, 0.5, False
        try:
            while True:
                try:
                    if not subscribed:
                        subscribed = await self._subscribe(driver, pusher)
                    self._report(await self._apply_deltas(driver))
                    now = loop.time()
                    due = [p for p in self.properties.values() if next_due[p.name] <= now]
                    for prop in due:
                        next_due[prop.name] = now + self._interval(prop, subscribed)
                    self._report(await self._poll(driver, due, pusher))
                    failures, backoff = 0, 0.5
                    self._set_state("online")
                    wait = max(0.0, min(next_due.values(), default=now + 1) - loop.time())
                except Exception as exc:  # noqa: BLE001 - one device's failure stays its own
                    failures += 1
                    if failures >= self.mapper.settings.offline_after:
                        self._set_state("offline")
                    if isinstance(exc, DeviceUnreachable):
                        log.info("device unreachable: %s", exc, extra={"device": self.id})
                    else:  # a driver bug or a library error it does not know: retried all the same
                        log.error("driver failed: %r", exc, exc_info=exc, extra={"device": self.id})
                    wait, backoff = backoff, min(backoff * 2, self.mapper.settings.max_backoff)
                    next_due = dict.fromkeys(self.properties, 0.0)
                    subscribed = False  # subscriptions died with the connection
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
                self._wake.clear()
        finally:
            await pusher.close()
            await driver.close()


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

    def publish(self, topic: str, body: JSON) -> None:
        """QoS 0: a report lost while the broker is away is superseded by the next one."""
        if self._connection is not None:
            with contextlib.suppress(MqttError):
                self._connection.publish(topic, orjson.dumps(body))

    async def run(self) -> None:
        backoff, node = 0.1, self.settings.node
        try:
            while True:
                connection = MqttConnection(
                    self.settings.mqtt,
                    f"mapper-{self.settings.protocol}-{node}-{uuid.uuid4()}",
                    self._on_burst,
                )
                try:
                    await connection.connect()
                    await connection.subscribe(
                        [
                            membership_result_topic(node),
                            membership_updated_topic(node),
                            f"{DEVICE_PREFIX}+/+/twin/update/delta",
                        ]
                    )
                    self._connection = connection
                    backoff = 0.1
                    self._asked = str(uuid.uuid4())
                    self.publish(
                        membership_get_topic(node),
                        {"event_id": self._asked, "protocol": self.settings.protocol},
                    )
                    await connection.run()
                except MqttError as exc:
                    log.warning("MQTT connection lost: %s", exc, extra={"node": node})
                finally:
                    self._connection = None
                    await connection.close()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
        finally:
            for worker in list(self.workers.values()):
                await worker.stop()

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
        if topic == membership_result_topic(node):
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
        elif topic == membership_updated_topic(node):
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
        elif topic.endswith("/twin/update/delta"):
            device_id = "/".join(topic[len(DEVICE_PREFIX) :].split("/")[:2])
            worker = self.workers.get(device_id)
            if worker is not None and isinstance(body.get("delta"), dict):
                worker.on_delta(body["delta"])

    def _start(self, entry: JSON) -> None:
        """Start a worker, or restart it when the device's spec changed."""
        device_id = str(entry["id"])
        current = self.workers.get(device_id)
        if current is not None and current.spec == (entry.get("spec") or {}):
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
