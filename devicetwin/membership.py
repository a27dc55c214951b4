"""Which devices the node holds: adopt a newly declared device set over the stored one. Pure.

A declared device (from manifests or the cloud) replaces the stored spec, but the twins'
reported values and edge-local desired values survive: a desired value from the declaration is
applied as a cloud write only when the declaration changed it, and, from the cloud, only when
the cloud had seen the edge's latest desired write (the conflict rule). A cloud value refused
that way is noted on the twin (`overruled`), so the cloud can say so.

A change of desired values only is not a spec change: mappers hear of it as a delta, and their
device keeps its connection (KubeEdge re-creates the device in the mapper: its issue #6269).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from devicetwin.model import Device, DeviceId, Twin, TwinValue, Version
from devicetwin.rules import apply_cloud_desired
from devicetwin.spec import declared_desired, mapper_spec


@dataclass(frozen=True, slots=True)
class MembershipChange:
    devices: dict[DeviceId, Device]
    added: list[Device]
    removed: list[Device]
    updated: list[Device]  # what a mapper sees of the device changed (spec, labels)
    rewritten: list[Device] = field(default_factory=list)  # only desired values changed
    desired: dict[DeviceId, list[str]] = field(default_factory=dict)  # desired values changed
    overruled: list[DeviceId] = field(default_factory=list)  # a cloud value refused, or no more


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
        if adopted is None:
            return twin._replace(overruled=TwinValue(after, now))
        if old.expected is None or after != old.expected.value:
            adopted = adopted._replace(overruled=None)  # a new cloud value won: nothing overruled
        return adopted  # the cloud adopting the edge's own value keeps the note
    return twin


def adopt_declared(stored: Device | None, declared: Device, now: int) -> Device:
    """The declared device, carrying over state and twins from the stored one."""
    if stored is None:
        return declared
    before, after = declared_desired(stored.spec), declared_desired(declared.spec)
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


def _expected(twin: Twin | None) -> str | None:
    return None if twin is None or twin.expected is None else twin.expected.value


def reconcile(stored: dict[DeviceId, Device], declared: list[Device], now: int) -> MembershipChange:
    """Adopt `declared` as the node's full device set and say what was added/removed/updated."""
    devices: dict[DeviceId, Device] = {}
    change = MembershipChange(devices, [], [], [])
    for device in declared:
        old = stored.get(device.id)
        new = devices[device.id] = adopt_declared(old, device, now)
        if old is None:
            change.added.append(new)
            continue
        names = [n for n, t in new.twins.items() if _expected(t) != _expected(old.twins.get(n))]
        if names:
            change.desired[device.id] = names
        overruled = any(
            t.overruled != getattr(old.twins.get(n), "overruled", None)
            for n, t in new.twins.items()
        )
        if overruled:
            change.overruled.append(device.id)
        if mapper_spec(old.spec) != mapper_spec(new.spec) or old.attributes != new.attributes:
            change.updated.append(new)
        elif old.spec != new.spec or overruled:  # stored again, but nothing for the mappers
            change.rewritten.append(new)
    change.removed.extend(d for device_id, d in stored.items() if device_id not in devices)
    return change
