"""Desired values written at the edge, adopted into the Device (the conflict rule's cloud half).

The edge wins desired unless the cloud has already seen its change. The cloud records what it
has seen in the annotation `devices.kedge.io/edge-desired-versions` ({property: the edge's
desired-write count}); a Device declaration carries it to the edge, which applies a changed
cloud desired value only if that count is the edge's latest. So when a node reports a desired
value with a newer count, it is written into `spec.properties[].desired.value` with the new
count (an update with the object's resourceVersion, retried on conflict); a `kubectl patch`
made meanwhile without that count loses to the edge's value, as the rule says.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, NamedTuple

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from controllers.devices import API_GROUP, API_VERSION
from kedge.channel.routes import EDGE_VERSIONS

log = logging.getLogger("kedge.controllers")
GROUP, VERSION, PLURAL = "devices.kubeedge.io", "v1beta1", "devices"
ATTEMPTS = 5


class EdgeWrite(NamedTuple):
    """A desired value written at the edge, as its node reports it."""

    value: str
    edge_count: int  # the edge's desired-write count for the property
    declared: str | None = None  # the cloud's value the node held when it reported
    at: int = 0  # when the edge wrote it (ms)


Conflict = tuple[str, str, str, int]  # property, cloud value replaced, edge value kept, when


def clean_desired(raw: Any) -> dict[str, EdgeWrite]:
    """{property: EdgeWrite} from a node's report; ValueError when malformed."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError("desired must be an object")
    out = {}
    for name, entry in raw.items():
        entry = entry if isinstance(entry, dict) else {}
        value, count = entry.get("value"), entry.get("edgeVersion")
        declared, at = entry.get("declared"), entry.get("at", 0)
        if (
            not isinstance(value, str)
            or not isinstance(count, int)
            or count < 1
            or not (declared is None or isinstance(declared, str))
            or not isinstance(at, int)
        ):
            raise ValueError(
                f"desired.{name} must be {{value: string, edgeVersion: int >= 1, "
                "declared: string, at: ms}"
            )
        out[str(name)] = EdgeWrite(value, count, declared, at)
    return out


def _current(device: dict[str, Any], name: str) -> str | None:
    for entry in (device.get("spec") or {}).get("properties") or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            return (entry.get("desired") or {}).get("value")
    return None


def conflicts(device: dict[str, Any], desired: dict[str, EdgeWrite]) -> list[Conflict]:
    """Cloud values the adoption of `desired` replaces although the node never received them
    (a `kubectl patch` made while it was cut off): the user must learn their value lost."""
    seen, out = seen_versions(device), []
    for name, write in sorted(desired.items()):
        current = _current(device, name)
        if (
            write.edge_count > seen.get(name, 0)
            and write.declared is not None
            and current not in (None, write.value, write.declared)
        ):
            out.append((name, str(current), write.value, write.at))
    return out


def seen_versions(device: dict[str, Any]) -> dict[str, int]:
    annotations = (device.get("metadata") or {}).get("annotations") or {}
    try:
        seen = json.loads(annotations.get(EDGE_VERSIONS, "{}"))
    except (TypeError, ValueError):
        return {}
    return {k: v for k, v in seen.items() if isinstance(v, int)} if isinstance(seen, dict) else {}


def with_seen_versions(device: dict[str, Any]) -> dict[str, Any]:
    """The Device as sent to its node: always with the annotation (empty when nothing was
    adopted yet), so the edge applies the cloud's desired values under the rule."""
    meta = device.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    if EDGE_VERSIONS in annotations:
        return device
    return {**device, "metadata": {**meta, "annotations": {**annotations, EDGE_VERSIONS: "{}"}}}


def adopt(device: dict[str, Any], desired: dict[str, EdgeWrite]) -> bool:
    """Write newer edge desired values into `device` (in place); True when it changed."""
    seen = seen_versions(device)
    properties = (device.get("spec") or {}).get("properties") or []
    changed = False
    for name, (value, count, _, _) in sorted(desired.items()):
        if count <= seen.get(name, 0):
            continue
        seen[name] = count
        changed = True
        entry = next((p for p in properties if isinstance(p, dict) and p.get("name") == name), None)
        if entry is None:  # the model's property, not listed in the device: list it
            entry = {"name": name}
            device.setdefault("spec", {}).setdefault("properties", []).append(entry)
        entry["desired"] = {**(entry.get("desired") or {}), "value": value}
    if changed:
        meta = device.setdefault("metadata", {})
        meta.setdefault("annotations", {})[EDGE_VERSIONS] = json.dumps(seen, sort_keys=True)
    return changed


class EdgeDesired:
    """Adopts a node's desired values into its Device (called in a worker thread);
    `on_conflict(namespace, name, conflicts)` hears of cloud values replaced unseen."""

    def __init__(
        self,
        api: client.ApiClient,
        on_conflict: Callable[[str, str, list[Conflict]], None] = lambda *_: None,
    ) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.on_conflict = on_conflict

    def write(self, namespace: str, name: str, reported: dict[str, Any]) -> None:
        desired = {k: EdgeWrite(*v) for k, v in reported.items()}
        for _ in range(ATTEMPTS):
            try:
                device = self.custom.get_namespaced_custom_object(
                    API_GROUP, API_VERSION, namespace, PLURAL, name
                )
            except ApiException as exc:
                if exc.status == 404:
                    return  # deleted meanwhile: nothing to adopt into
                raise
            replaced = conflicts(device, desired)
            if not adopt(device, desired):
                return
            try:
                self.custom.replace_namespaced_custom_object(
                    API_GROUP, API_VERSION, namespace, PLURAL, name, device
                )
                device_name = f"{namespace}/{name}"
                log.info("adopted desired values written at the edge",
                         extra={"device": device_name, "properties": sorted(desired)})  # fmt: skip
                if replaced:
                    self.on_conflict(namespace, name, replaced)
                return
            except ApiException as exc:
                if exc.status != 409:  # 409: changed meanwhile; read it again
                    raise
        raise RuntimeError(f"{namespace}/{name} kept changing; edge desired values not adopted")
