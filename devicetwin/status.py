"""A device's status as the cloud shows it: KubeEdge's Device.status (twins with reported and
observedDesired, state, lastOnlineTime), plus what only cloudcore reads: desired values written at
the edge (`desired`, the conflict rule's input) and the notes it turns into conditions. Pure.
"""

from __future__ import annotations

from typing import Any

from devicetwin.model import Device, TwinValue
from devicetwin.rules import sync_reason, unreached
from devicetwin.spec import declared_desired


def _value(value: TwinValue | None, kind: str) -> dict[str, Any] | None:
    if value is None:
        return None
    return {"value": value.value, "metadata": {"timestamp": str(value.timestamp), "type": kind}}


def status_of(device: Device) -> dict[str, Any]:
    """Device.status as KubeEdge shows it (twins with reported and observedDesired, state), and
    the desired values written at the edge under `desired` (not part of Device.status)."""
    twins = []
    for name, twin in sorted(device.twins.items()):
        if twin.deleted or twin.actual is None:
            continue
        entry: dict[str, Any] = {"propertyName": name, "reported": _value(twin.actual, twin.type)}
        observed = _value(twin.observed_desired, twin.type)
        if observed is not None:
            entry["observedDesired"] = observed
        twins.append(entry)
    status: dict[str, Any] = {"state": device.state, "twins": twins}
    if device.last_online:
        status["lastOnlineTime"] = device.last_online
    declared = declared_desired(device.spec)
    desired = {  # edge-local desired writes, for the cloud to adopt (the conflict rule)
        name: {
            "value": twin.expected.value,
            "edgeVersion": twin.expected_version.edge,
            "declared": declared.get(name, ""),  # the cloud's value this node last received
            "at": twin.expected.timestamp,
        }
        for name, twin in sorted(device.twins.items())
        if twin.expected is not None and twin.expected_version.edge > 0 and not twin.deleted
    }
    if desired:
        status["desired"] = desired
    return status | edge_notes(device)


def edge_notes(device: Device) -> dict[str, Any]:
    """What the cloud turns into conditions (not part of Device.status): desired values the
    device did not take, cloud desired values the edge kept its own over, and properties the
    mapper cannot serve."""
    notes: dict[str, Any] = {}
    twins = sorted((n, t) for n, t in device.twins.items() if not t.deleted)
    missed = {name: sync_reason(twin) for name, twin in twins if unreached(twin)}
    if missed:
        notes["unreached"] = missed
    overruled = {
        name: {
            "refused": twin.overruled.value,
            "kept": twin.expected.value,
            "keptSince": twin.expected.timestamp,
        }
        for name, twin in twins
        if twin.overruled is not None and twin.expected is not None
    }
    if overruled:
        notes["overruled"] = overruled
    errors = {name: twin.error for name, twin in twins if twin.error}
    if errors:
        notes["errors"] = errors
    return notes
