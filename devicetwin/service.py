"""The twin service: in-memory devices + rules + store; turns requests into replies.

It knows topics and payloads but not MQTT: the EventBus (edgecore) hands it (topic, payload)
pairs in bursts, takes the burst's writes (`take_batch()`), awaits `commit()` and only then
publishes the replies. Durability therefore comes before acknowledgement. If a commit fails,
the in-memory state is reloaded from SQLite and each request gets its 500 reply instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from devicetwin import payloads
from devicetwin.committer import Committer
from devicetwin.events import Outbound, membership_events
from devicetwin.history import readings
from devicetwin.membership import reconcile
from devicetwin.model import Device, DeviceId, Twin, Version
from devicetwin.presence import MapperPresence, parse_presence
from devicetwin.retries import DeltaRetries
from devicetwin.rules import (
    MAX_OPTIONAL_TWINS,
    TwinChange,
    TwinError,
    TwinPatch,
    apply_edge_update,
    apply_state,
    build_delta,
)
from devicetwin.store import Batch, TwinStore
from devicetwin.topics import (
    NODE_PREFIX,
    Action,
    TopicError,
    delta_topic,
    document_topic,
    get_result_topic,
    membership_get_topic,
    membership_result_topic,
    parse_device_topic,
    parse_presence_topic,
    state_result_topic,
    update_result_topic,
)
from kedge.logs import Throttle

log = logging.getLogger("kedge.devicetwin")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class Handled:
    """Replies for one request; `failure_topic` names where a 500 goes if its commit fails."""

    action: str
    code: int = 200
    replies: list[Outbound] = field(default_factory=list)
    failure_topic: str | None = None
    event_id: str = ""

    def failed(self, now: int) -> Handled:
        """This request as answered after its batch failed to commit."""
        if self.failure_topic is None:
            return self
        error = TwinError(500, "twin store write failed; nothing was applied")
        reply = Outbound(self.failure_topic, payloads.error_result(self.event_id, now, error))
        return Handled(self.action, 500, [reply])


class TwinService:
    def __init__(
        self,
        node: str,
        store: TwinStore,
        clock: Callable[[], int] = now_ms,
        retries: DeltaRetries | None = None,
        max_optional: int = MAX_OPTIONAL_TWINS,
        *,
        on_status: Callable[[list[Device]], None] = lambda _devices: None,
        on_mappers: Callable[[], None] = lambda: None,
        keep_history: bool = True,
    ) -> None:
        """`on_status(devices)`: devices whose status as the cloud shows it (values, state,
        sync) changed, once that is durable; `on_mappers()`: a mapper came or went."""
        self.node, self.max_optional = node, max_optional
        self.store = store
        self.clock = clock
        self.devices: dict[DeviceId, Device] = store.load()
        self.presence = MapperPresence()  # which mappers are alive here
        self.on_mappers, self.on_status = on_mappers, on_status
        self.retries = retries or DeltaRetries()
        self._batch = Batch()
        self.committer = Committer(store, self.reload, self._committed)
        self._throttle = Throttle()  # refusals logged at most every 10 s per topic
        self.keep_history = keep_history  # every reported value into the history table
        self.history_pending = 0  # points written since the last trim

    def _changed(self, device_id: DeviceId) -> None:
        self._batch.changed.add(device_id)

    def _committed(self, changed: set[DeviceId]) -> None:
        devices = [self.devices[i] for i in sorted(changed) if i in self.devices]
        if devices:
            self.on_status(devices)

    # ---- requests from the bus ----------------------------------------------------------

    def handle(self, topic: str, payload: bytes) -> Handled:
        """Answer one MQTT request; never raises, whatever a client sends."""
        try:
            return self._dispatch(topic, payload)
        except Exception:  # a bug must cost one request, not the connection or the burst
            log.exception("request failed", extra={"node": self.node, "topic": topic})
            error = TwinError(500, "internal error while handling the request")
            return self._error("internal", f"{topic}/result", "", error)

    @property
    def mappers(self) -> set[str]:
        """Protocols with a mapper alive on this node."""
        return self.presence.alive()

    def _dispatch(self, topic: str, payload: bytes) -> Handled:
        presence = parse_presence_topic(self.node, topic)
        if presence is not None:
            return self._presence(*presence, payload)
        if topic.startswith(NODE_PREFIX):
            return self._membership_get(topic, payload)
        try:
            parsed = parse_device_topic(topic)
        except TopicError as exc:
            return self._error("topic", exc.reply_topic, "", TwinError(400, exc.reason))
        if parsed is None:
            return Handled("ignored")
        handler = self._handlers[parsed.action]
        return handler(self, parsed.device, payload)

    def _error(self, action: str, topic: str, event_id: str, error: TwinError) -> Handled:
        held = self._throttle.allow(topic)
        if held is not None:
            log.info(
                "request refused: %s",
                error.reason,
                extra={"node": self.node, "topic": topic, "code": error.code, "held_back": held},
            )
        reply = Outbound(topic, payloads.error_result(event_id, self.clock(), error))
        return Handled(action, error.code, [reply])

    def _device(self, device_id: DeviceId) -> Device:
        device = self.devices.get(device_id)
        if device is None:
            raise TwinError(404, f"device {device_id} is not bound to node {self.node}")
        return device

    def _twin_update(self, device_id: DeviceId, payload: bytes) -> Handled:
        topic, event_id = update_result_topic(device_id), ""
        try:
            body = payloads.decode(payload)
            event_id = payloads.event_id_of(body)
            change, events = self.report(device_id, payloads.parse_twin_update(body))
        except TwinError as exc:
            return self._error("twin/update", topic, event_id, exc)
        reply = Outbound(topic, payloads.update_result(event_id, self.clock(), change))
        return Handled("twin/update", 200, [reply, *events], topic, event_id)

    def report(
        self, device_id: DeviceId, patches: dict[str, TwinPatch]
    ) -> tuple[TwinChange, list[Outbound]]:
        """A mapper's or client's twin update (MQTT or DMI), all or nothing: the change and its
        events; its writes wait in the batch. TwinError when refused."""
        device = self._device(device_id)
        now = self.clock()
        change = apply_edge_update(device, patches, now, self.max_optional)
        if self.keep_history:
            points = readings(device.id, patches, change.twins)
            self._batch.history += points
            self.history_pending += len(points)
        return change, self._apply_change(device, change, now)

    def _apply_change(self, device: Device, change: TwinChange, now: int) -> list[Outbound]:
        """Adopt an accepted change in memory, queue it for the store, return events.

        The device's twin map is updated in place: the service owns it, the rules that read it
        have finished, and copying every device per update showed in profiles.
        """
        device.twins.update(change.twins)
        for name, twin in change.twins.items():
            self._batch.twins[(device.id, name)] = twin
            if not twin.has_delta():
                self.retries.settled((device.id, name))
        events = []
        if change.document:
            events.append(Outbound(document_topic(device.id), payloads.document(now, change)))
        if change.document or change.status_changed:
            self._changed(device.id)
        events.extend(self._deltas(device, change.desired, now))
        return events

    def _deltas(self, device: Device, names: Iterable[str] | None, now: int) -> list[Outbound]:
        """The delta for `names` (default: every twin) not reached, its retries scheduled."""
        delta = build_delta(device, names)
        if not delta:
            return []
        for name, value in delta.items():
            self.retries.sent((device.id, name), value)
        return [Outbound(delta_topic(device.id), payloads.delta(now, device, delta))]

    def due_deltas(self) -> list[Outbound]:
        """Deltas whose retry is due (desired still not reached), one message per device."""
        due: dict[DeviceId, list[str]] = {}
        for (device_id, name), value in self.retries.due():
            device = self.devices.get(device_id)
            twin = None if device is None else device.twins.get(name)
            if twin is None or not twin.has_delta() or twin.expected is None:
                self.retries.settled((device_id, name))
            elif twin.expected.value == value:
                due.setdefault(device_id, []).append(name)
        now = self.clock()
        return [
            event for device_id, names in due.items()
            for event in self._deltas(self.devices[device_id], names, now)
        ]  # fmt: skip

    def _twin_get(self, device_id: DeviceId, payload: bytes) -> Handled:
        topic, event_id = get_result_topic(device_id), ""
        try:
            event_id = payloads.event_id_of(payloads.decode(payload))
            device = self._device(device_id)
        except TwinError as exc:
            return self._error("twin/get", topic, event_id, exc)
        reply = Outbound(topic, payloads.get_result(event_id, self.clock(), device))
        return Handled("twin/get", 200, [reply])

    def _state_update(self, device_id: DeviceId, payload: bytes) -> Handled:
        topic, event_id = state_result_topic(device_id), ""
        try:
            body = payloads.decode(payload)
            event_id = payloads.event_id_of(body)
            device = self.set_state(device_id, payloads.parse_state(body))
        except TwinError as exc:
            return self._error("state/update", topic, event_id, exc)
        reply = Outbound(topic, payloads.state_result(event_id, self.clock(), device))
        return Handled("state/update", 200, [reply], topic, event_id)

    def set_state(self, device_id: DeviceId, state: str) -> Device:
        """A mapper's report of the device's state (MQTT or DMI); its write waits in the batch."""
        old = self._device(device_id)
        device = apply_state(old, state, rfc3339(self.clock()))
        if device.state != old.state:
            self._changed(device_id)
        self.devices[device_id] = device
        self._batch.states[device_id] = device
        return device

    def _membership_get(self, topic: str, payload: bytes) -> Handled:
        """KubeEdge's membership answer, or, asked with a protocol, that protocol's devices with
        their specs on the protocol's own result topic (see devicetwin.topics)."""
        reply_topic, event_id = membership_result_topic(self.node), ""
        if topic != membership_get_topic(self.node):
            return Handled("ignored")
        try:
            body = payloads.decode(payload)
            event_id = payloads.event_id_of(body)
            protocol = payloads.parse_protocol_filter(body)
        except TwinError as exc:
            return self._error("membership/get", reply_topic, event_id, exc)
        if protocol is not None and protocol not in self.presence.asked:
            self.presence.asked.add(protocol)
            self.on_mappers()
        devices = [d for d in self.devices.values() if protocol in (None, d.protocol)]
        now = self.clock()
        reply_topic = membership_result_topic(self.node, protocol)
        result = payloads.membership_result(event_id, now, devices, protocol is not None)
        # a mapper asking for its devices (on start or reconnect) gets their pending deltas too
        deltas = [e for d in devices for e in self._deltas(d, None, now)]
        return Handled("membership/get", 200, [Outbound(reply_topic, result), *deltas])

    def _presence(self, protocol_part: str, instance: str, payload: bytes) -> Handled:
        """A mapper's retained "alive" message on `<protocol>/<instance>`, or its emptying (its
        last will: it died)."""
        try:
            alive = bool(payload) and payloads.decode(payload) is not None
            protocol = parse_presence(protocol_part, instance, alive)
        except TwinError as exc:
            log.info("mapper presence refused: %s", exc.reason,
                     extra={"node": self.node, "mapper": instance})  # fmt: skip
            return Handled("mapper/presence", exc.code)
        self.mapper_seen(instance, protocol)
        return Handled("mapper/presence")

    def mapper_seen(self, instance: str, protocol: str | None) -> None:
        """A mapper instance arrived for `protocol` or (None) left; when a protocol loses its
        last mapper its devices turn `unknown` (nothing serves them, their state is not known).
        The writes wait in the batch."""
        now = self.clock()
        gone = self.presence.update(instance, protocol, now)
        facts = {"node": self.node, "mapper": instance, "protocol": protocol or gone}
        log.info("mapper %s", "alive" if protocol else "gone", extra=facts)
        if gone is not None:
            for device in [d for d in self.devices.values() if d.protocol == gone]:
                if device.state != "unknown":
                    self.devices[device.id] = apply_state(device, "unknown", rfc3339(now))
                    self._batch.states[device.id] = self.devices[device.id]
                    self._changed(device.id)
        self.on_mappers()

    _handlers: dict[Action, Callable[[TwinService, DeviceId, bytes], Handled]] = {
        Action.TWIN_UPDATE: _twin_update,
        Action.TWIN_GET: _twin_get,
        Action.STATE_UPDATE: _state_update,
    }

    # ---- writes from the edge API and the manifests ---------------------------------------

    async def set_desired(
        self, device_id: DeviceId, name: str, value: str, version: Version | None = None
    ) -> tuple[Twin, list[Outbound]]:
        """Edge-local desired write (HTTP); committed before it returns."""
        device = self._device(device_id)
        twin = device.twins.get(name)
        if twin is None or twin.deleted:
            raise TwinError(404, f"device {device_id} has no property {name!r}")
        patch = TwinPatch(expected=value, expected_version=version)
        now = self.clock()
        change = apply_edge_update(device, {name: patch}, now)
        events = self._apply_change(device, change, now)
        try:
            await self.commit(self.take_batch())
        except Exception as exc:
            raise TwinError(500, "twin store write failed; nothing was applied") from exc
        return change.twins[name], events

    async def adopt(self, declared: list[Device]) -> list[Outbound]:
        """Make `declared` the node's device set; committed before it returns."""
        now = self.clock()
        change = reconcile(self.devices, declared, now)
        self.devices = change.devices
        self._batch.removed.update(device.id for device in change.removed)
        for device in (*change.added, *change.updated, *change.rewritten):
            self._batch.devices[device.id] = device
        await self.commit(self.take_batch())
        for device in change.removed:
            self.retries.forget(device.id)
        events = membership_events(self.node, change, now)
        for device in change.added:
            events.extend(self._deltas(device, None, now))
        for device_id, names in change.desired.items():
            events.extend(self._deltas(self.devices[device_id], names, now))
        for device_id in change.overruled:
            self._changed(device_id)
        return events

    def all_deltas(self) -> list[Outbound]:
        """Deltas for every twin whose desired value is not reached (after a broker reconnect,
        when any of them may have been lost)."""
        now = self.clock()
        return [e for device in self.devices.values() for e in self._deltas(device, None, now)]

    # ---- persistence ----------------------------------------------------------------------

    def take_batch(self) -> Batch:
        """The writes made since the last call, for `commit()`."""
        batch, self._batch = self._batch, Batch()
        return batch

    async def commit(self, batch: Batch) -> None:
        """Return once `batch` is in SQLite (group-committed with concurrent batches)."""
        await self.committer.commit(batch)

    @property
    def store_stats(self) -> tuple[int, int]:
        """(transactions, rows) committed so far."""
        return self.committer.commits, self.committer.rows

    def submit(self, batch: Batch) -> asyncio.Future[None]:
        """Like `commit()`, as a future, for callers that attach a callback instead of a task."""
        return self.committer.submit(batch)

    def reload(self) -> None:
        """After a failed commit: forget unsaved changes, take SQLite's state as the truth."""
        log.error("twin store commit failed; reloading twins from disk", extra={"node": self.node})
        self._batch = Batch()
        self.devices = self.store.load()

    async def close(self) -> None:
        await self.commit(self.take_batch())
        await self.committer.close()
