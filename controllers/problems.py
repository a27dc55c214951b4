"""Keeps every Device's `status.conditions` current and records a Warning Event when a problem
appears (model not found, node unknown or not ready, no mapper for the protocol).

Level-based: every pass recomputes the conditions of the devices whose inputs changed (the
Device, its model, its node's facts) and compares them with what each Device shows, so only
changes are written (through a
StatusWriter: coalesced, unchanged skipped), and a cloudcore restart writes nothing new.
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
from controllers.devices import DeviceRouting, Key
from controllers.status import StatusWriter
from kedge import clock

log = logging.getLogger("kedge.controllers")
Obj = dict[str, Any]
# node -> (ready, mappers, protocols whose mapper stopped with when)
NodeFacts = Callable[[str], tuple[str | None, frozenset[str], frozenset[tuple[str, str]]]]
RecordEvent = Callable[[Obj], Awaitable[None]]
Overruled = tuple[str, str, str, str]  # property, cloud value refused, edge value kept, since
TICK = 2.0  # seconds between passes when nothing wakes the loop earlier
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
        self._announced: dict[tuple[Key, str], str] = {}  # (device, type) -> what was announced
        self._checked: dict[Key, tuple[str, str, Facts]] = {}  # what each device was checked at
        self.notes: dict[Key, EdgeNotes] = {}  # what each device's node last said about it
        self._replaced: dict[Key, dict[str, tuple[str, str, str]]] = {}  # by the cloud, unseen
        self.wake = asyncio.Event()

    def note(self, key: Key, notes: EdgeNotes) -> None:
        """A node's notes on a device (unreached or overruled desired values, property errors)."""
        if self.notes.get(key, EdgeNotes()) != notes:
            self.notes[key] = notes
            self.wake.set()

    def overrule(self, key: Key, conflicts: list[Conflict]) -> None:
        """Cloud values replaced by edge values before the node ever received them."""
        for name, refused, kept, at in conflicts:
            self._replaced.setdefault(key, {})[name] = (refused, kept, _rfc3339(at))
        self.wake.set()

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

    def check(self) -> list[Obj]:
        """One pass: conditions to write go to the writer; the Events to record are returned."""
        now, events = clock.now(), []
        for key, device in list(self.routing.devices.items()):
            model_key = (key[0], str(((device.get("spec") or {}).get("deviceModelRef") or {})
                                     .get("name", "")))  # fmt: skip
            model = self.routing.models.get(model_key)
            if not self.serves(str((device.get("spec") or {}).get("nodeName") or "")):
                self._checked.pop(key, None)  # another replica's: looked at afresh if it returns
                continue
            facts = self._facts(key, device, model)
            signature = (_rv(device), _rv(model), facts)
            if self._checked.get(key) == signature:
                continue  # nothing it depends on changed since the last pass
            self._checked[key] = signature
            current = conditions(device, protocol_of(device, model), facts, now)
            if current != (device.get("status") or {}).get("conditions"):
                self.writer.report(key, {"conditions": current})
            shown = {c.get("type"): c for c in (device.get("status") or {}).get("conditions") or []
                     if isinstance(c, dict)}  # fmt: skip
            for condition in current:
                slot = (key, condition["type"])
                if condition in problems(current):
                    news = _news(condition)
                    if slot not in self._announced and _news(shown.get(condition["type"])) == news:
                        self._announced[slot] = news  # shown (and told) before a restart
                    if self._announced.get(slot) != news:
                        self._announced[slot] = news
                        events.append(event_for(device, condition, now))
                else:
                    self._announced.pop(slot, None)
        for key in [k for k in self._checked if k not in self.routing.devices]:  # deleted
            del self._checked[key]
            self.notes.pop(key, None)
            self._replaced.pop(key, None)
            for slot in [s for s in self._announced if s[0] == key]:
                del self._announced[slot]
        return events

    async def run(self, ready: Callable[[], bool]) -> None:
        """Until cancelled: a pass whenever woken or every TICK, once `ready()` (the controller
        listed everything and the nodes are known)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), TICK)
            self.wake.clear()
            if not ready():
                continue
            for event in self.check():
                try:
                    await self.record_event(event)
                except Exception as exc:  # noqa: BLE001 - an Event is best effort, as kubelet's
                    log.warning("event not recorded: %r", exc)
