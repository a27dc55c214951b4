"""Which devices each edge node must hold, from Device and DeviceModel events. Pure.

A node holds a device when the device's `spec.nodeName` names it; what it is sent is the Device
and its DeviceModel (the edge merges them, as it does with manifests). Every event turns into
the per-node changes it causes: a new device, a changed device or model (every device using
the model), a device that moved from one node to another, a device removed. A device whose
model does not exist yet is held back (and reported) until the model appears.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

API_GROUP, API_VERSION = "devices.kubeedge.io", "v1beta1"  # the device CRDs

Obj = dict[str, Any]
Key = tuple[str, str]  # namespace, name


@dataclass(frozen=True, slots=True)
class NodeChange:
    node: str
    action: str  # "upsert" or "remove"
    key: Key
    device: Obj | None = None
    model: Obj | None = None


@dataclass(frozen=True, slots=True)
class Problem:
    """A condition to show on the Device: a missing model, for example."""

    key: Key
    reason: str
    message: str


def _key(obj: Obj) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


def _node(device: Obj) -> str:
    spec = device.get("spec") or {}
    return str(spec.get("nodeName") or "")


def model_key(device: Obj) -> Key:
    ref = (device.get("spec") or {}).get("deviceModelRef") or {}
    return _key(device)[0], str(ref.get("name", ""))


def _delivered(device: Obj) -> tuple[Any, ...]:
    """What a node gets of a device, apart from its version: spec, labels, annotations."""
    meta = device.get("metadata") or {}
    return device.get("spec"), meta.get("labels"), meta.get("annotations")


class DeviceRouting:
    def __init__(self) -> None:
        self.devices: dict[Key, Obj] = {}
        self.models: dict[Key, Obj] = {}
        self.placed: dict[Key, str] = {}  # device -> node it was sent to
        self.on_device: list[Callable[[Key], None]] = []  # a Device changed (any part of it)
        self.on_model: list[Callable[[Key], None]] = []  # a DeviceModel changed

    def by_node(self, node: str) -> list[NodeChange]:
        """Everything `node` holds (for a node that connects or asks for a resync)."""
        return [self._upsert(key) for key, placed in sorted(self.placed.items()) if placed == node]

    def _upsert(self, key: Key) -> NodeChange:
        device = self.devices[key]
        return NodeChange(_node(device), "upsert", key, device, self.models[model_key(device)])

    def _place(self, key: Key) -> tuple[list[NodeChange], list[Problem]]:
        """Send `key` where it belongs now; take it from where it was."""
        changes: list[NodeChange] = []
        problems: list[Problem] = []
        device = self.devices.get(key)
        before = self.placed.get(key)
        target = ""
        if device is not None:
            target = _node(device)
            if target and model_key(device) not in self.models:
                namespace, model = model_key(device)
                problems.append(
                    Problem(key, "ModelNotFound", f"DeviceModel {namespace}/{model} not found")
                )
                target = ""
        if before and before != target:
            changes.append(NodeChange(before, "remove", key))
            del self.placed[key]
        if target:
            self.placed[key] = target
            changes.append(self._upsert(key))
        return changes, problems

    def device_event(self, kind: str, device: Obj) -> tuple[list[NodeChange], list[Problem]]:
        key = _key(device)
        before = self.devices.get(key)
        if kind == "DELETED":
            self.devices.pop(key, None)
        else:
            self.devices[key] = device
        for listener in self.on_device:
            listener(key)
        if kind != "DELETED" and before is not None and _delivered(before) == _delivered(device):
            return [], []  # a status write (reports, conditions): nothing for the node
        return self._place(key)

    def model_event(self, kind: str, model: Obj) -> tuple[list[NodeChange], list[Problem]]:
        key = _key(model)
        if kind == "DELETED":
            self.models.pop(key, None)
        else:
            self.models[key] = model
        for listener in self.on_model:
            listener(key)
        changes: list[NodeChange] = []
        problems: list[Problem] = []
        for device_key, device in sorted(self.devices.items()):
            if model_key(device) == key:
                more, issues = self._place(device_key)
                changes += more
                problems += issues
        return changes, problems
