"""What the console shows, from Kubernetes objects as the API server returns them. Pure.

A device's reported side is in its DeviceStatus (KubeEdge v1.23) or in `Device.status` (v1.22
shape) on clusters without DeviceStatus; its conditions are always in `Device.status`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

JSON = dict[str, Any]


def _conditions(obj: Mapping[str, Any]) -> list[JSON]:
    keys = ("type", "status", "reason", "message", "lastTransitionTime")
    found = (obj.get("status") or {}).get("conditions") or []
    return [{k: c.get(k, "") for k in keys} for c in found if isinstance(c, dict)]


def node_view(node: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> JSON:
    name = node["metadata"]["name"]
    ready = next((c for c in _conditions(node) if c["type"] == "Ready"), {})
    heartbeat = next((c.get("lastHeartbeatTime", "")
                      for c in (node.get("status") or {}).get("conditions") or []
                      if c.get("type") == "Ready"), "")  # fmt: skip
    mine = [p for p in pods if (p.get("spec") or {}).get("nodeName") == name]
    return {
        "name": name,
        "ready": ready.get("status", "Unknown"),
        "reason": ready.get("reason", ""),
        "lastHeartbeat": heartbeat,
        "edge": "node-role.kubernetes.io/edge" in (node["metadata"].get("labels") or {}),
        "pods": [
            {
                "namespace": p["metadata"].get("namespace", ""),
                "name": p["metadata"]["name"],
                "phase": (p.get("status") or {}).get("phase", "Pending"),
            }
            for p in mine
        ],  # fmt: skip
    }


def _reported_side(device: Mapping[str, Any], status: Mapping[str, Any] | None) -> JSON:
    if status is not None and isinstance(status.get("status"), dict):
        return dict(status["status"])
    return dict(device.get("status") or {})


def device_view(device: Mapping[str, Any], status: Mapping[str, Any] | None) -> JSON:
    """One row of the device list."""
    meta, spec = device["metadata"], device.get("spec") or {}
    side = _reported_side(device, status)
    return {
        "namespace": meta.get("namespace", ""),
        "name": meta["name"],
        "model": (spec.get("deviceModelRef") or {}).get("name", ""),
        "node": spec.get("nodeName", ""),
        "protocol": (spec.get("protocol") or {}).get("protocolName", ""),
        "state": side.get("state") or "unknown",
        "lastOnlineTime": side.get("lastOnlineTime", ""),
        "conditions": _conditions(device),
    }


def _twin_value(twin: Mapping[str, Any], key: str) -> JSON:
    part = twin.get(key) or {}
    return {"value": part.get("value"), "timestamp": (part.get("metadata") or {}).get("timestamp")}


OUTCOMES = ("DesiredAccepted", "DesiredReached")  # the conflict rule first, then the device


def outcome(name: str, desired: str | None, reported: Any, conditions: list[JSON]) -> str:
    """What became of a property's desired value: a False condition naming the property (its
    message is `name: why; name: why`), else reached, else still on its way."""
    if desired is None:
        return ""
    for kind in OUTCOMES:
        for c in conditions:
            if c["type"] != kind or c["status"] != "False":
                continue
            for part in str(c["message"]).split("; "):
                if part.startswith(f"{name}: "):
                    return f"{c['reason']}: {part.removeprefix(f'{name}: ')}"
    if reported == desired:
        return "reached"
    return f"waiting for the device to show {desired}"


def device_detail(
    device: Mapping[str, Any], status: Mapping[str, Any] | None, model: Mapping[str, Any] | None
) -> JSON:
    """The device page: its row, and per property what was asked and what the device shows."""
    spec = device.get("spec") or {}
    twins = {t.get("propertyName"): t for t in _reported_side(device, status).get("twins") or []
             if isinstance(t, dict)}  # fmt: skip
    described = {p.get("name"): p for p in (model or {}).get("spec", {}).get("properties") or []}
    row = device_view(device, status)
    properties, conditions = [], row["conditions"]
    for prop in spec.get("properties") or []:
        name = prop.get("name", "")
        about, twin = described.get(name) or {}, twins.get(name) or {}
        properties.append({
            "name": name,
            "type": str(about.get("type", "")).lower(),
            "unit": about.get("unit", ""),
            "writable": about.get("accessMode") == "ReadWrite",
            "desired": (desired := (prop.get("desired") or {}).get("value")),
            "reported": (reported := _twin_value(twin, "reported")),
            "outcome": outcome(name, desired, reported["value"], conditions),
            "observedDesired": _twin_value(twin, "observedDesired"),
        })  # fmt: skip
    return row | {"properties": properties}


def event_view(event: Mapping[str, Any]) -> JSON:
    return {
        "type": event.get("type", ""),
        "reason": event.get("reason", ""),
        "message": event.get("message", ""),
        "count": event.get("count", 1),
        "time": event.get("lastTimestamp") or event.get("eventTime") or "",
    }


def desired_patch(device: Mapping[str, Any], prop: str, value: str) -> list[JSON] | None:
    """A JSON patch setting one property's desired value, guarded by a `test` of the property's
    name at that index (a concurrent edit that reorders properties fails, it never writes the
    wrong one); None if the device has no such property."""
    for index, entry in enumerate((device.get("spec") or {}).get("properties") or []):
        if entry.get("name") == prop:
            base = f"/spec/properties/{index}"
            guard = {"op": "test", "path": f"{base}/name", "value": prop}
            if isinstance(entry.get("desired"), dict):  # its metadata stays
                return [guard, {"op": "add", "path": f"{base}/desired/value", "value": value}]
            return [guard, {"op": "add", "path": f"{base}/desired", "value": {"value": value}}]
    return None
