"""Adopting a declared device set keeps reported values and edge-local desired values."""

from __future__ import annotations

from dataclasses import replace

from devicetwin.membership import reconcile
from devicetwin.model import Device, DeviceId, Twin, TwinValue, Version

NOW = 1_700_000_000_000


def declared(desired: str = "20", did: str = "ns/d") -> Device:
    twin = Twin(
        "sp",
        "int",
        False,
        expected=TwinValue(desired, 1) if desired else None,
        expected_version=Version(1 if desired else 0, 0),
    )
    spec = {"properties": [{"name": "sp"}], "desired": {"sp": desired} if desired else {}}
    ns, name = did.split("/")
    return Device(id=DeviceId(did), name=name, namespace=ns, twins={"sp": twin}, spec=spec)


def stored_after_edge_write() -> Device:
    device = declared("20")
    twin = device.twins["sp"]._replace(
        expected=TwinValue("23", 5),
        expected_version=Version(1, 1),
        actual=TwinValue("22", 5),
    )
    extra = Twin("note", actual=TwinValue("x", 5))
    return replace(device, state="online", twins={"sp": twin, "note": extra})


def test_reconcile_when_new_device_is_added() -> None:
    change = reconcile({}, [declared()], NOW)
    assert [d.id for d in change.added] == ["ns/d"] and not change.removed and not change.updated


def test_reconcile_when_declaration_unchanged_keeps_edge_desired_and_reported() -> None:
    stored = stored_after_edge_write()
    change = reconcile({stored.id: stored}, [declared("20")], NOW)
    device = change.devices[stored.id]
    assert device.twins["sp"].expected == TwinValue("23", 5)
    assert device.twins["sp"].actual == TwinValue("22", 5)
    assert device.twins["note"].actual == TwinValue("x", 5)
    assert device.state == "online"
    assert not change.added and not change.updated


def test_reconcile_when_declared_desired_changes_applies_it_as_cloud_write() -> None:
    stored = stored_after_edge_write()
    change = reconcile({stored.id: stored}, [declared("25")], NOW)
    twin = change.devices[stored.id].twins["sp"]
    assert twin.expected == TwinValue("25", NOW)
    assert twin.expected_version == Version(2, 1)
    # a new desired value is not a spec change: the mappers get a delta, not a new device
    assert not change.updated and [d.id for d in change.rewritten] == ["ns/d"]
    assert change.desired == {"ns/d": ["sp"]}


def test_reconcile_when_the_spec_changes_tells_the_mappers() -> None:
    stored = stored_after_edge_write()
    moved = declared("20")
    moved.spec["properties"] = [{"name": "sp", "collectCycle": 5000}]
    change = reconcile({stored.id: stored}, [moved], NOW)
    assert [d.id for d in change.updated] == ["ns/d"] and not change.desired


def test_reconcile_reads_desired_values_stored_inside_the_properties() -> None:
    """Specs stored before declared values moved out of the properties: no change seen."""
    stored = replace(
        stored_after_edge_write(), spec={"properties": [{"name": "sp", "desired": "20"}]}
    )
    change = reconcile({stored.id: stored}, [declared("20")], NOW)
    assert not change.updated and not change.desired
    assert change.devices[stored.id].twins["sp"].expected == TwinValue("23", 5)


def test_reconcile_when_device_no_longer_declared_is_removed() -> None:
    stored = stored_after_edge_write()
    change = reconcile({stored.id: stored}, [declared(did="ns/other")], NOW)
    assert [d.id for d in change.removed] == ["ns/d"]
    assert list(change.devices) == ["ns/other"]


def test_reconcile_when_cloud_had_not_seen_the_edge_write_keeps_the_edge_value() -> None:
    stored = stored_after_edge_write()  # the edge wrote 23 (edge count 1)
    from_cloud = replace(declared("25"), seen_edge={})  # a cloud change made without seeing it
    twin = reconcile({stored.id: stored}, [from_cloud], NOW).devices[stored.id].twins["sp"]
    assert twin.expected == TwinValue("23", 5) and twin.expected_version == Version(1, 1)


def test_reconcile_when_cloud_had_seen_the_edge_write_applies_the_cloud_value() -> None:
    stored = stored_after_edge_write()
    from_cloud = replace(declared("25"), seen_edge={"sp": 1})
    twin = reconcile({stored.id: stored}, [from_cloud], NOW).devices[stored.id].twins["sp"]
    assert twin.expected == TwinValue("25", NOW) and twin.expected_version == Version(2, 1)


def test_reconcile_notes_a_refused_cloud_value_until_a_new_cloud_value_wins() -> None:
    stored = stored_after_edge_write()  # the edge wrote 23 (edge count 1)
    refused = reconcile({stored.id: stored}, [replace(declared("25"), seen_edge={})], NOW)
    twin = refused.devices[stored.id].twins["sp"]
    assert twin.overruled == TwinValue("25", NOW) and twin.expected == TwinValue("23", 5)
    assert refused.overruled == ["ns/d"] and not refused.desired
    # the cloud adopts the edge's value (with its count): the note stays, so the user sees it
    adopted = replace(declared("23"), seen_edge={"sp": 1})
    after = reconcile(refused.devices, [adopted], NOW + 1)
    assert after.devices[stored.id].twins["sp"].overruled == TwinValue("25", NOW)
    assert not after.overruled
    # a later cloud value that has seen the edge's write applies, and the note goes
    newer = replace(declared("26"), seen_edge={"sp": 1})
    final = reconcile(after.devices, [newer], NOW + 2)
    twin = final.devices[stored.id].twins["sp"]
    assert twin.expected == TwinValue("26", NOW + 2) and twin.overruled is None
    assert final.overruled == ["ns/d"] and final.desired == {"ns/d": ["sp"]}
