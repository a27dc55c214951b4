"""Which devices the node holds: adopt a newly declared device set over the stored one. Pure.

A declared device (from manifests or the cloud) replaces the stored spec, but the twins'
reported values and edge-local desired values survive: a desired value from the declaration is
applied as a cloud write only when the declaration changed it, and, from the cloud, only when
the cloud had seen the edge's latest desired write (the conflict rule).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from devicetwin.model import Device, DeviceId, Twin, Version
from devicetwin.rules import apply_cloud_desired


@dataclass(frozen=True, slots=True)
class MembershipChange:
    devices: dict[DeviceId, Device]
    added: list[Device]
    removed: list[Device]
    updated: list[Device]


def _declared_desired(device: Device) -> dict[str, str]:
    properties = device.spec.get("properties", [])
    assert isinstance(properties, list)
    return {str(p["name"]): str(p.get("desired", "")) for p in properties}


def _adopt_twin(
    old: Twin, new: Twin, before: str, after: str, seen_edge: int | None, now: int
) -> Twin:
    """The stored twin under a new declaration. A changed desired value is a cloud write: from
    a manifest it always applies; from the cloud only if the cloud had seen the edge's latest
    desired write (`seen_edge`), otherwise the edge's value stands (the conflict rule)."""
    twin = old._replace(type=new.type, optional=False, deleted=False, description=new.description)
    if after and after != before:
        edge = twin.expected_version.edge if seen_edge is None else seen_edge
        adopted = apply_cloud_desired(
            twin, after, Version(twin.expected_version.cloud + 1, edge), now
        )
        twin = adopted if adopted is not None else twin
    return twin


def adopt_declared(stored: Device | None, declared: Device, now: int) -> Device:
    """The declared device, carrying over state and twins from the stored one."""
    if stored is None:
        return declared
    before, after = _declared_desired(stored), _declared_desired(declared)
    twins: dict[str, Twin] = {}
    for name, new in declared.twins.items():
        old = stored.twins.get(name)
        twins[name] = (
            new
            if old is None
            else _adopt_twin(
                old,
                new,
                before.get(name, ""),
                after.get(name, ""),
                None if declared.seen_edge is None else declared.seen_edge.get(name, 0),
                now,
            )  # fmt: skip
        )
    for name, old in stored.twins.items():
        if name not in twins and old.optional:
            twins[name] = old
    return replace(declared, state=stored.state, last_online=stored.last_online, twins=twins)


def reconcile(stored: dict[DeviceId, Device], declared: list[Device], now: int) -> MembershipChange:
    """Adopt `declared` as the node's full device set and say what was added/removed/updated."""
    devices: dict[DeviceId, Device] = {}
    added: list[Device] = []
    updated: list[Device] = []
    for device in declared:
        old = stored.get(device.id)
        devices[device.id] = adopt_declared(old, device, now)
        if old is None:
            added.append(devices[device.id])
        elif old.spec != device.spec or old.attributes != device.attributes:
            updated.append(devices[device.id])
    removed = [device for device_id, device in stored.items() if device_id not in devices]
    return MembershipChange(devices, added, removed, updated)
