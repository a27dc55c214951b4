"""What stands between a Device and working, as `status.conditions` (and Events). Pure.

Three condition types, each True when fine:
- `ModelFound`: the DeviceModel the device names exists (else ModelNotFound; the device is not
  sent to its node until it does).
- `NodeReady`: the node in `spec.nodeName` is a registered edge node posting heartbeats (else
  NodeUnknown: never registered, or NodeNotReady: stopped posting).
- `MapperAvailable`: a mapper for the device's protocol has registered on that node (else
  NoMapper, or MapperStopped once a mapper that was there died; Unknown while the node is not
  ready).
- `DesiredReached`: the mapper wrote every desired value and the device shows it (else
  DesiredNotReached, naming each property and why: clamped, rounded, refused).
- `DesiredAccepted`: the edge applied the cloud's desired values (else EdgeValueKept: a cloud
  value set without seeing a newer edge write lost to it, the conflict rule; it names the
  property, the value kept and when the edge wrote it).
- `PropertiesServed`: the mapper serves every property (else PropertyNotServed, with the
  mapper's reasons: a STREAM property, a pushMethod kedge does not implement such as
  dbMethod.influxdb2 or otel, a visitor that cannot work).
A device without `spec.nodeName` gets only `ModelFound`.
`lastTransitionTime` changes only when a condition's status does.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Facts:
    """What the controller knows about a device's surroundings."""

    model_found: bool
    node_ready: str | None  # "True", "Unknown", or None for a node never registered
    mappers: frozenset[str]  # protocols with a mapper registered on the node
    lost: frozenset[tuple[str, str]] = frozenset()  # (protocol, since) whose mapper stopped
    unreached: tuple[tuple[str, str], ...] = ()  # (property, why its desired value is not met)
    overruled: tuple[tuple[str, str, str, str], ...] = ()  # (property, refused, kept, since)
    errors: tuple[tuple[str, str], ...] = ()  # (property, why its mapper cannot serve it)


Condition = tuple[str, str, str, str]  # type, status, reason, message


@dataclass(frozen=True, slots=True)
class EdgeNotes:
    """What a node reports about a device beside Device.status (see `Facts`)."""

    unreached: tuple[tuple[str, str], ...] = ()
    overruled: tuple[tuple[str, str, str, str], ...] = ()
    errors: tuple[tuple[str, str], ...] = ()


def _texts(raw: Any, field: str) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise ValueError(f"{field} must map property names to strings")
    return tuple(sorted((str(k), v[:512]) for k, v in raw.items()))


def _stamp(ms: Any) -> str:
    if not isinstance(ms, int) or isinstance(ms, bool) or not 0 <= ms < 2**53:
        raise ValueError("keptSince must be a time in milliseconds")
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def notes_of(report: dict[str, Any]) -> EdgeNotes:
    """The notes in a node's status report; ValueError when malformed."""
    overruled = report.get("overruled") or {}
    if not isinstance(overruled, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("refused"), str) and isinstance(v.get("kept"), str)
        for v in overruled.values()
    ):
        raise ValueError("overruled must map property names to {refused, kept, keptSince}")
    return EdgeNotes(
        unreached=_texts(report.get("unreached"), "unreached"),
        overruled=tuple(
            sorted(
                (str(name), v["refused"][:256], v["kept"][:256], _stamp(v.get("keptSince")))
                for name, v in overruled.items()
            )
        ),  # fmt: skip
        errors=_texts(report.get("errors"), "errors"),
    )


def _mapper(protocol: str, node: str, facts: Facts) -> Condition:
    if facts.node_ready != "True":
        return ("MapperAvailable", "Unknown", "NodeNotReady",
                f"node {node} is not ready to say which mappers it runs")  # fmt: skip
    if protocol and protocol in facts.mappers:
        return ("MapperAvailable", "True", "MapperRegistered",
                f"a {protocol} mapper is registered on {node}")  # fmt: skip
    since = dict(facts.lost).get(protocol)
    if since is not None:
        return ("MapperAvailable", "False", "MapperStopped",
                f"the {protocol} mapper on {node} stopped at {since}; its devices are "
                "unknown until a mapper is back")  # fmt: skip
    missing = f"no mapper for protocol {protocol or '(none)'} is registered on {node}"
    return ("MapperAvailable", "False", "NoMapper", missing)


def _served(facts: Facts) -> Condition:
    if facts.errors:
        why = "; ".join(f"{name}: {error}" for name, error in facts.errors)
        return ("PropertiesServed", "False", "PropertyNotServed", why)
    return ("PropertiesServed", "True", "PropertiesServed",
            "the mapper reported no property it cannot serve")  # fmt: skip


def _desired(facts: Facts) -> list[Condition]:
    if facts.unreached:
        missed = "; ".join(f"{name}: {why}" for name, why in facts.unreached)
        reached = ("DesiredReached", "False", "DesiredNotReached", missed)
    else:
        reached = ("DesiredReached", "True", "DesiredReached",
                   "no desired value was refused or missed by the device")  # fmt: skip
    if facts.overruled:
        kept = "; ".join(
            f"{name}: kept {value}, written at the edge at {since}, over the cloud's "
            f"{refused} (set without seeing the edge's write)"
            for name, refused, value, since in facts.overruled
        )
        accepted = ("DesiredAccepted", "False", "EdgeValueKept", kept)
    else:
        accepted = ("DesiredAccepted", "True", "CloudValuesApplied",
                    "the edge applies the cloud's desired values")  # fmt: skip
    return [reached, accepted]


def protocol_of(device: Obj, model: Obj | None) -> str:
    for spec in ((device.get("spec") or {}), ((model or {}).get("spec") or {})):
        protocol = spec.get("protocol")
        if isinstance(protocol, dict) and isinstance(protocol.get("protocolName"), str):
            return str(protocol["protocolName"])
        if isinstance(protocol, str) and protocol:
            return protocol
    return ""


def wanted(device: Obj, protocol: str, facts: Facts) -> list[Condition]:
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
    return [*out, _mapper(protocol, node, facts), _served(facts), *_desired(facts)]


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
