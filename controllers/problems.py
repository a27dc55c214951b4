"""Keeps every Device's `status.conditions` current and records a Warning Event when a problem
appears (model not found, node unknown or not ready, no mapper for the protocol).

Level-based: every pass recomputes the conditions of the devices whose inputs changed (the
Device, its model, its node's facts and session, the edge's notes; each change touches the
devices it concerns, nothing is rescanned on a timer) and compares them with what each Device
shows, so only changes are written (through a StatusWriter: coalesced, unchanged skipped), and a
cloudcore restart writes nothing new.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from controllers.conditions import EdgeNotes, Facts, conditions, problems, protocol_of
from controllers.desired import Conflict
from controllers.devices import DeviceRouting, Key, model_key
from controllers.status import StatusWriter
from kedge import clock

log = logging.getLogger("kedge.controllers")
Obj = dict[str, Any]
# node -> (ready, mappers, protocols whose mapper stopped with when)
NodeFacts = Callable[[str], tuple[str | None, frozenset[str], frozenset[tuple[str, str]]]]
RecordEvent = Callable[[Obj], Awaitable[None]]
Overruled = tuple[str, str, str, str]  # property, cloud value refused, edge value kept, since
TICK = 2.0  # seconds between looks at readiness while starting
CHUNK = 1_000  # devices looked at per turn of the event loop
# conditions whose every new message is news (a new conflict), not only a new reason
ANNOUNCE_EACH_MESSAGE = frozenset({"DesiredAccepted"})


def _rfc3339(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rv(obj: Obj | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("resourceVersion", ""))


def event_for(device: Obj, condition: Obj, now: str) -> Obj:
    meta = device.get("metadata") or {}
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"generateName": f"{meta.get('name')}.", "namespace": meta.get("namespace")},
        "involvedObject": {
            "apiVersion": device.get("apiVersion", "devices.kubeedge.io/v1beta1"),
            "kind": "Device", "name": meta.get("name"), "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
        },
        "type": "Warning", "reason": condition["reason"], "message": condition["message"],
        "source": {"component": "kedge-device-controller"},
        "reportingComponent": "kedge-device-controller",
        "firstTimestamp": now, "lastTimestamp": now, "count": 1,
    }  # fmt: skip


def _news(condition: Obj | None) -> str:
    """What makes a problem worth a new Event: its reason, or for some types its message."""
    condition = condition or {}
    if condition.get("type") in ANNOUNCE_EACH_MESSAGE:
        return f"{condition.get('reason')}: {condition.get('message')}"
    return str(condition.get("reason", ""))


class DeviceProblems:
    """Conditions of the devices whose inputs changed: a pass looks only at devices touched
    since the last one (by their Device, their node's facts or session, the edge's notes), so
    a settled fleet costs nothing however large; a model change or a change of leadership
    touches every device."""

    def __init__(
        self,
        routing: DeviceRouting,
        node_facts: NodeFacts,
        writer: StatusWriter,
        record_event: RecordEvent,
        serves: Callable[[str], bool] = lambda _node: True,
    ) -> None:
        """`serves(node)`: this replica decides for the node's devices (it serves the node,
        or, leading, the node is connected nowhere)."""
        self.routing, self.node_facts, self.serves = routing, node_facts, serves
        self.writer, self.record_event = writer, record_event
        self._announced: dict[Key, dict[str, str]] = {}  # device -> type -> what was announced
        self._checked: dict[Key, tuple[str, str, Facts]] = {}  # what each device was checked at
        self.notes: dict[Key, EdgeNotes] = {}  # what each device's node last said about it
        self._replaced: dict[Key, dict[str, tuple[str, str, str]]] = {}  # by the cloud, unseen
        self._touched: set[Key] = set()
        self._everything = True  # the next pass looks at every device
        self._node_of: dict[Key, str] = {}  # where each device was when last looked at
        self._on_node: dict[str, set[Key]] = {}  # node -> its devices, by _node_of
        self.wake = asyncio.Event()
        routing.on_device.append(self.touch)
        routing.on_model.append(lambda _key: self.touch_all())

    def touch(self, key: Key) -> None:
        """Something `key`'s conditions depend on changed: the next pass looks at it."""
        self._touched.add(key)
        self.wake.set()

    def touch_node(self, node: str) -> None:
        """The node's facts changed, or its session here began or ended."""
        self._touched |= self._on_node.get(node, set())
        self.wake.set()

    def touch_all(self) -> None:
        self._everything = True
        self.wake.set()

    def note(self, key: Key, notes: EdgeNotes) -> None:
        """A node's notes on a device (unreached or overruled desired values, property errors)."""
        if self.notes.get(key, EdgeNotes()) != notes:
            self.notes[key] = notes
            self.touch(key)

    def overrule(self, key: Key, conflicts: list[Conflict]) -> None:
        """Cloud values replaced by edge values before the node ever received them."""
        for name, refused, kept, at in conflicts:
            self._replaced.setdefault(key, {})[name] = (refused, kept, _rfc3339(at))
        self.touch(key)

    def _overruled(self, key: Key, device: Obj, notes: EdgeNotes) -> tuple[Overruled, ...]:
        """The edge's notes and the cloud's own, each kept until a newer cloud value (the
        Device's desired value moving away from the one kept) replaces it."""
        desired = {p.get("name"): (p.get("desired") or {}).get("value")
                   for p in (device.get("spec") or {}).get("properties") or []
                   if isinstance(p, dict)}  # fmt: skip
        replaced = self._replaced.get(key, {})
        for name in [n for n, (_, kept, _) in replaced.items() if desired.get(n) != kept]:
            del replaced[name]
        merged = {name: (name, *entry) for name, entry in replaced.items()}
        merged |= {entry[0]: entry for entry in notes.overruled}
        return tuple(sorted(merged.values()))

    def _facts(self, key: Key, device: Obj, model: Obj | None) -> Facts:
        node = str((device.get("spec") or {}).get("nodeName") or "")
        ready, mappers, lost = self.node_facts(node) if node else (None, frozenset(), frozenset())
        notes = self.notes.get(key, EdgeNotes())
        return Facts(model is not None, ready, mappers, lost, notes.unreached,
                     self._overruled(key, device, notes), notes.errors)  # fmt: skip

    def check(self, limit: int | None = None) -> list[Obj]:
        """One pass over (at most `limit` of) the devices touched; conditions to write go to
        the writer; the Events to record are returned. Devices left wait for the next pass."""
        if self._everything:
            self._everything = False
            self._touched |= set(self.routing.devices) | set(self._node_of)
        now, events = clock.now(), []
        for _ in range(len(self._touched) if limit is None else limit):
            if not self._touched:
                break
            events += self._check(self._touched.pop(), now)
        return events

    @property
    def pending(self) -> bool:
        return self._everything or bool(self._touched)

    def _check(self, key: Key, now: str) -> list[Obj]:
        device = self.routing.devices.get(key)
        if device is None:
            self._forget(key)
            return []
        node = str((device.get("spec") or {}).get("nodeName") or "")
        self._place(key, node)
        model = self.routing.models.get(model_key(device))
        if not self.serves(node):
            self._checked.pop(key, None)  # another replica's: looked at afresh if it returns
            return []
        facts = self._facts(key, device, model)
        signature = (_rv(device), _rv(model), facts)
        if self._checked.get(key) == signature:
            return []  # nothing it depends on changed since the last look
        self._checked[key] = signature
        current = conditions(device, protocol_of(device, model), facts, now)
        if current != (device.get("status") or {}).get("conditions"):
            self.writer.report(key, {"conditions": current})
        return self._announce(key, device, current, now)

    def _announce(self, key: Key, device: Obj, current: list[Obj], now: str) -> list[Obj]:
        """Events for problems that are news: not announced yet (nor shown before a restart)."""
        shown = {c.get("type"): c for c in (device.get("status") or {}).get("conditions") or []
                 if isinstance(c, dict)}  # fmt: skip
        announced, events = self._announced.pop(key, {}), []
        for condition in current:
            kind = condition["type"]
            if condition in problems(current):
                news = _news(condition)
                if kind not in announced and _news(shown.get(kind)) == news:
                    announced[kind] = news  # shown (and told) before a restart
                if announced.get(kind) != news:
                    announced[kind] = news
                    events.append(event_for(device, condition, now))
            else:
                announced.pop(kind, None)
        if announced:  # kept only for devices with problems: a healthy fleet holds nothing
            self._announced[key] = announced
        return events

    def _place(self, key: Key, node: str) -> None:
        before = self._node_of.get(key)
        if before == node:
            return
        if before is not None:
            self._unplace(key, before)
        self._node_of[key] = node
        self._on_node.setdefault(node, set()).add(key)

    def _unplace(self, key: Key, node: str) -> None:
        keys = self._on_node.get(node, set())
        keys.discard(key)
        if not keys:
            self._on_node.pop(node, None)

    def _forget(self, key: Key) -> None:
        """A deleted device (one never looked at keeps the notes that came before it)."""
        node = self._node_of.pop(key, None)
        if node is None:
            return
        self._unplace(key, node)
        for kept in (self._checked, self.notes, self._replaced, self._announced):
            kept.pop(key, None)

    async def run(self, ready: Callable[[], bool], chunk: int = CHUNK) -> None:
        """Until cancelled: a pass whenever woken, once `ready()` (the controller listed
        everything and the nodes are known), `chunk` devices per turn of the event loop."""
        while not ready():  # start-up only: readiness has no event of its own
            self.wake.clear()  # what woke it is kept in the touched set
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), TICK)
        while True:
            self.wake.clear()
            for event in self.check(chunk):
                try:
                    await self.record_event(event)
                except Exception as exc:  # noqa: BLE001 - an Event is best effort, as kubelet's
                    log.warning("event not recorded: %r", exc)
            if self.pending:
                await asyncio.sleep(0)  # more to look at: the rest of the loop goes first
            else:
                await self.wake.wait()
