"""The node's DeviceModels and Devices, each parsed once and kept. Pure.

A change from the cloud is checked against what is kept, not by parsing every document again: a
Device against its model, a DeviceModel against the devices that use it, a deletion against the
devices that would lose their model. `check` raises ManifestError without changing anything;
`apply` takes a checked change. The result is the same as building a catalog from the whole
set at once (the tests hold the two side by side).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from devicetwin.model import Device, DeviceId
from devicetwin.spec import API_VERSION, Document, Model, parse_device, parse_model

ModelKey = tuple[str, str]  # (namespace, name)
Slot = tuple[str, int]  # (source, index): where a document lives (a file holds several)


@dataclass
class Change:
    """What a checked document does: models and devices set (a value) or dropped (None)."""

    models: dict[Slot, Model | None] = field(default_factory=dict)
    devices: dict[Slot, tuple[Document, Device] | None] = field(default_factory=dict)


def _model_key(device: Device) -> ModelKey:
    return device.namespace, str(device.spec["model"])


class Catalog:
    def __init__(self, node: str, docs: Iterable[Document], now: int) -> None:
        """Every document must parse (models first, whatever their order); ManifestError if not."""
        self.node = node
        self.models: dict[Slot, Model] = {}
        self.devices: dict[Slot, tuple[Document, Device]] = {}
        self.slots: dict[DeviceId, Slot] = {}  # device id -> the document that defines it
        self.by_key: dict[ModelKey, Model] = {}  # the models devices resolve against
        ordered = sorted(docs, key=lambda d: d.body.get("kind") != "DeviceModel")
        for doc in ordered:
            self.apply(self.check(doc.source, doc.body, now, doc.index))

    def bound(self) -> list[Device]:
        """The devices bound to this node."""
        return [d for _, d in self.devices.values() if d.spec["nodeName"] == self.node]

    def _index(self, models: dict[Slot, Model]) -> dict[ModelKey, Model]:
        return {(m.namespace, m.name): m for m in models.values()}

    def check(self, source: str, body: dict[str, Any] | None, now: int, index: int = 1) -> Change:
        """What storing `body` as document `index` of `source` (None: removing it) does;
        ManifestError when the node's set would no longer be valid."""
        slot = (source, index)
        if body is None:
            if slot in self.models:
                return self._model_change(slot, None, now)
            return Change(devices={slot: None}) if slot in self.devices else Change()
        doc = Document(source, index, body)
        if body.get("apiVersion") != API_VERSION:
            raise doc.fail("apiVersion", f"must be {API_VERSION}")
        kind = body.get("kind")
        if kind == "DeviceModel":
            return self._model_change(slot, parse_model(doc), now)
        if kind != "Device":
            raise doc.fail("kind", f"{kind!r} is not DeviceModel or Device")
        device = self._parse_device(doc, self.by_key, now)
        return Change(devices={slot: (doc, device)})

    def _parse_device(self, doc: Document, models: dict[ModelKey, Model], now: int) -> Device:
        spec = doc.body.get("spec")
        node_name = spec.get("nodeName") if isinstance(spec, dict) else None
        if node_name is not None and not isinstance(node_name, str):
            raise doc.fail("spec.nodeName", "must be a string")
        device = parse_device(doc, models, now)
        slot = (doc.source, doc.index)
        if self.slots.get(device.id, slot) != slot:
            raise doc.fail("metadata.name", f"device {device.id} is defined twice")
        return device

    def _model_change(self, slot: Slot, model: Model | None, now: int) -> Change:
        """A model set or dropped, and every device that uses it (or used it) parsed again."""
        models = dict(self.models)
        old = models.pop(slot, None)
        if model is not None:
            models[slot] = model
        index = self._index(models)
        touched = {(m.namespace, m.name) for m in (old, model) if m is not None}
        change = Change(models={slot: model})
        for device_slot, (doc, device) in self.devices.items():
            if _model_key(device) in touched:
                change.devices[device_slot] = (doc, parse_device(doc, index, now))
        return change

    def apply(self, change: Change) -> None:
        for slot, model in change.models.items():
            self.models.pop(slot, None)  # a replaced model counts as the newest
            if model is not None:
                self.models[slot] = model
        if change.models:  # rebuilt only when models change, not per device
            self.by_key = self._index(self.models)
        for slot, entry in change.devices.items():
            old = self.devices.pop(slot, None)
            if old is not None:
                self.slots.pop(old[1].id, None)
            if entry is not None:
                self.devices[slot] = entry
                self.slots[entry[1].id] = slot
