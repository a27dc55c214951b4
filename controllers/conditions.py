"""What stands between a Device and working, as `status.conditions` (and Events). Pure.

Three condition types, each True when fine:
- `ModelFound`: the DeviceModel the device names exists (else ModelNotFound; the device is not
  sent to its node until it does).
- `NodeReady`: the node in `spec.nodeName` is a registered edge node posting heartbeats (else
  NodeUnknown: never registered, or NodeNotReady: stopped posting).
- `MapperAvailable`: a mapper for the device's protocol has registered on that node (else
  NoMapper; Unknown while the node is not ready).
A device without `spec.nodeName` gets only `ModelFound`. `lastTransitionTime` changes only
when a condition's status does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Facts:
    """What the controller knows about a device's surroundings."""

    model_found: bool
    node_ready: str | None  # "True", "Unknown", or None for a node never registered
    mappers: frozenset[str]  # protocols with a mapper registered on the node


def protocol_of(device: Obj, model: Obj | None) -> str:
    for spec in ((device.get("spec") or {}), ((model or {}).get("spec") or {})):
        protocol = spec.get("protocol")
        if isinstance(protocol, dict) and isinstance(protocol.get("protocolName"), str):
            return str(protocol["protocolName"])
        if isinstance(protocol, str) and protocol:
            return protocol
    return ""


def wanted(device: Obj, protocol: str, facts: Facts) -> list[tuple[str, str, str, str]]:
    """(type, status, reason, message) for each condition the device should show."""
    spec = device.get("spec") or {}
    model = str((spec.get("deviceModelRef") or {}).get("name", ""))
    out = [
        ("ModelFound", "True", "ModelFound", f"DeviceModel {model} exists")
        if facts.model_found
        else ("ModelFound", "False", "ModelNotFound",
              f"DeviceModel {model} not found; the device waits for it"),
    ]  # fmt: skip
    node = str(spec.get("nodeName") or "")
    if not node:
        return out
    if facts.node_ready == "True":
        out.append(("NodeReady", "True", "NodeReady", f"node {node} is ready"))
    elif facts.node_ready is None:
        out.append(("NodeReady", "False", "NodeUnknown",
                    f"node {node} is not a registered edge node"))  # fmt: skip
    else:
        out.append(("NodeReady", "False", "NodeNotReady",
                    f"node {node} stopped posting its status"))  # fmt: skip
    if facts.node_ready != "True":
        out.append(("MapperAvailable", "Unknown", "NodeNotReady",
                    f"node {node} is not ready to say which mappers it runs"))  # fmt: skip
    elif protocol and protocol in facts.mappers:
        out.append(("MapperAvailable", "True", "MapperRegistered",
                    f"a {protocol} mapper is registered on {node}"))  # fmt: skip
    else:
        missing = f"no mapper for protocol {protocol or '(none)'} is registered on {node}"
        out.append(("MapperAvailable", "False", "NoMapper", missing))
    return out


def conditions(device: Obj, protocol: str, facts: Facts, now: str) -> list[Obj]:
    """The device's conditions, keeping each unchanged one's lastTransitionTime."""
    existing = {
        c.get("type"): c
        for c in (device.get("status") or {}).get("conditions") or []
        if isinstance(c, dict)
    }
    out = []
    for kind, status, reason, message in wanted(device, protocol, facts):
        before = existing.get(kind) or {}
        since = before.get("lastTransitionTime") if before.get("status") == status else None
        out.append({"type": kind, "status": status, "reason": reason, "message": message,
                    "lastTransitionTime": since or now})  # fmt: skip
    return out


def problems(conditions: list[Obj]) -> list[Obj]:
    """The conditions that are not fine (each becomes a Warning Event when it appears)."""
    return [c for c in conditions if c["status"] == "False"]
