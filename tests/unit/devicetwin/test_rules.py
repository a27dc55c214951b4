"""Table tests for the twin rules: validation, edge writes, cloud writes, delta, state."""

from __future__ import annotations

from dataclasses import replace

import pytest

from devicetwin.model import Device, DeviceId, PropertySpec, Twin, TwinValue, Version
from devicetwin.rules import (
    MAX_TWINS_PER_DEVICE,
    TwinError,
    TwinPatch,
    apply_cloud_desired,
    apply_edge_update,
    apply_state,
    build_delta,
    normalize_type,
    validate_key,
    validate_value,
)

NOW = 1_700_000_000_000


def make_device(**twins: Twin) -> Device:
    props = {
        "temperature": PropertySpec("temperature", "float", "ReadOnly"),
        "setpoint": PropertySpec("setpoint", "int", "ReadWrite", minimum=5, maximum=30),
        "power": PropertySpec("power", "boolean"),
    }
    base = {name: Twin(name=name, type=p.type, optional=False) for name, p in props.items()}
    base.update(twins)
    return Device(
        id=DeviceId("default/t1"), name="t1", namespace="default", properties=props, twins=base
    )


@pytest.mark.parametrize(
    ("value", "type_", "ok"),
    [
        ("42", "int", True),
        ("-7", "int", True),
        ("+3", "int", True),
        ("abc", "int", False),
        ("1.5", "int", False),
        (str(2**63), "int", False),
        ("", "int", False),
        ("1.5", "float", True),
        ("-2e3", "double", True),
        (".5", "float", True),
        ("nan", "float", False),
        ("inf", "double", False),
        ("1_000", "float", False),
        ("abc", "double", False),
        ("true", "boolean", True),
        ("false", "boolean", True),
        ("True", "boolean", False),
        ("1", "boolean", False),
        ("aGVsbG8=", "bytes", True),
        ("not base64!", "bytes", False),
        ("any text at all", "string", True),
        ("x" * 4097, "string", False),
        ("bell\x07", "string", False),
        ("line\nbreak", "string", True),
    ],
)
def test_validate_value_when_typed(value: str, type_: str, ok: bool) -> None:
    if ok:
        validate_value("p", value, type_)
    else:
        with pytest.raises(TwinError) as err:
            validate_value("p", value, type_)
        assert err.value.code == 400 and "p:" in err.value.reason


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        ("temperature", True),
        ("a-b_c.d,e:f/g@h#i", True),
        ("x" * 128, True),
        ("", False),
        ("x" * 129, False),
        ("has space", False),
        ('quote"', False),
        ("plus+", False),
    ],
)
def test_validate_key_when_given(key: str, ok: bool) -> None:
    if ok:
        validate_key(key)
    else:
        with pytest.raises(TwinError):
            validate_key(key)


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("INT", "int"),
        ("integer", "int"),
        ("FLOAT", "float"),
        ("DOUBLE", "double"),
        ("BYTES", "bytes"),
        ("bool", "boolean"),
    ],
)
def test_normalize_type_when_alias(raw: str, want: str) -> None:
    assert normalize_type(raw) == want


def test_normalize_type_takes_stream_and_rejects_unknown() -> None:
    assert normalize_type("STREAM") == "stream"  # KubeEdge's ONVIF models use it
    with pytest.raises(TwinError):
        normalize_type("VIDEO")


def test_edge_update_when_reported_bumps_edge_version_and_records_observed_desired() -> None:
    device = make_device(
        setpoint=Twin(
            "setpoint", "int", False, expected=TwinValue("20", 1), expected_version=Version(1, 0)
        )
    )
    change = apply_edge_update(device, {"setpoint": TwinPatch(actual="18")}, NOW)
    twin = change.twins["setpoint"]
    assert twin.actual == TwinValue("18", NOW)
    assert twin.actual_version == Version(0, 1)
    assert twin.observed_desired == TwinValue("20", 1)
    assert change.document["setpoint"][0] is device.twins["setpoint"]
    assert change.desired == ()  # a report is never echoed as a delta, reached or not


def test_edge_update_when_same_value_is_versioned_but_not_documented() -> None:
    device = make_device(
        power=Twin(
            "power", "boolean", False, actual=TwinValue("true", 1), actual_version=Version(0, 4)
        )
    )
    change = apply_edge_update(device, {"power": TwinPatch(actual="true")}, NOW)
    assert change.twins["power"].actual_version == Version(0, 5)
    assert change.document == {}
    assert change.desired == ()


@pytest.mark.parametrize(
    ("patches", "code", "fragment"),
    [
        ({"setpoint": TwinPatch(actual="abc")}, 400, "not a 64-bit integer"),
        ({"temperature": TwinPatch(expected="20")}, 400, "ReadOnly"),
        ({"setpoint": TwinPatch(expected="40")}, 400, "above the maximum"),
        ({"setpoint": TwinPatch(expected="1")}, 400, "below the minimum"),
        ({"setpoint": TwinPatch(actual="5", type="string")}, 400, "type is int"),
        ({"setpoint": TwinPatch(delete=True)}, 400, "cannot be deleted"),
        ({"setpoint": TwinPatch(optional=True)}, 400, "cannot be made optional"),
        ({"bad key": TwinPatch(actual="1")}, 400, "invalid property name"),
        ({"extra": TwinPatch(actual="1", type="video")}, 400, "unknown type"),
        ({"setpoint": TwinPatch(expected="10", expected_version=Version(0, 3))}, 409, "version"),
        ({"setpoint": TwinPatch(actual="10", actual_version=Version(1, 0))}, 409, "version"),
    ],
)
def test_edge_update_when_invalid_is_refused(patches, code: int, fragment: str) -> None:
    with pytest.raises(TwinError) as err:
        apply_edge_update(make_device(), patches, NOW)
    assert err.value.code == code
    assert fragment in err.value.reason


def test_edge_update_when_one_property_bad_applies_nothing() -> None:
    device = make_device()
    with pytest.raises(TwinError):
        apply_edge_update(
            device, {"power": TwinPatch(actual="true"), "setpoint": TwinPatch(actual="x")}, NOW
        )
    assert device.twins["power"].actual is None


def test_edge_update_when_version_matches_is_accepted() -> None:
    change = apply_edge_update(
        make_device(), {"setpoint": TwinPatch(expected="10", expected_version=Version(0, 0))}, NOW
    )
    assert change.twins["setpoint"].expected_version == Version(0, 1)


def test_edge_update_when_unknown_key_creates_optional_string_twin() -> None:
    change = apply_edge_update(make_device(), {"note": TwinPatch(actual="hi there")}, NOW)
    twin = change.twins["note"]
    assert (twin.optional, twin.type, twin.actual) == (True, "string", TwinValue("hi there", NOW))
    assert change.document["note"][0] is None


def test_edge_update_when_optional_twin_deleted_leaves_tombstone_and_revives() -> None:
    device = make_device(note=Twin("note", "int", True, actual=TwinValue("3", 1)))
    change = apply_edge_update(device, {"note": TwinPatch(delete=True)}, NOW)
    tomb = change.twins["note"]
    assert tomb.deleted and tomb.actual is None and tomb.actual_version == Version(0, 1)
    assert "note" in change.document
    revived = apply_edge_update(make_device(note=tomb), {"note": TwinPatch(actual="4")}, NOW)
    assert not revived.twins["note"].deleted and revived.twins["note"].type == "int"


def test_edge_update_when_deleting_missing_twin_is_a_no_op() -> None:
    change = apply_edge_update(make_device(), {"ghost": TwinPatch(delete=True)}, NOW)
    assert change.twins == {} and change.document == {}


def test_edge_update_when_too_many_twins_is_refused() -> None:
    extra = {f"k{i}": Twin(f"k{i}") for i in range(MAX_TWINS_PER_DEVICE)}
    with pytest.raises(TwinError, match="already has"):
        apply_edge_update(make_device(**extra), {"one-more": TwinPatch(actual="x")}, NOW)


@pytest.mark.parametrize(
    ("stored", "request_version", "accepted"),
    [
        (Version(0, 0), Version(1, 0), True),  # first cloud write
        (Version(2, 0), Version(3, 0), True),  # newer cloud write
        (Version(2, 1), Version(3, 1), True),  # cloud has seen the edge's write
        (Version(3, 0), Version(2, 0), False),  # stale cloud
        (Version(2, 1), Version(3, 0), False),  # edge changed since the cloud last looked
        (Version(2, 2), Version(2, 2), True),  # same vector: idempotent
    ],
)
def test_cloud_desired_when_versions_compare(
    stored: Version, request_version: Version, accepted: bool
) -> None:
    twin = Twin("setpoint", "int", False, expected=TwinValue("20", 1), expected_version=stored)
    result = apply_cloud_desired(twin, "25", request_version, NOW)
    if accepted:
        assert result is not None
        assert result.expected == TwinValue("25", NOW)
        assert result.expected_version == request_version
    else:
        assert result is None


def test_cloud_desired_when_value_has_wrong_type_is_refused() -> None:
    with pytest.raises(TwinError):
        apply_cloud_desired(Twin("setpoint", "int"), "warm", Version(1, 0), NOW)


@pytest.mark.parametrize(
    ("twin", "in_delta"),
    [
        (Twin("a", expected=TwinValue("1", 1), actual=TwinValue("2", 1)), True),
        (Twin("a", expected=TwinValue("1", 1)), True),
        (Twin("a", expected=TwinValue("1", 1), actual=TwinValue("1", 1)), False),
        (Twin("a", expected=TwinValue("", 1), actual=TwinValue("2", 1)), False),
        (Twin("a", actual=TwinValue("2", 1)), False),
        (Twin("a", deleted=True, expected=TwinValue("1", 1)), False),
    ],
)
def test_build_delta_when_desired_differs(twin: Twin, in_delta: bool) -> None:
    device = Device(id=DeviceId("default/d"), name="d", namespace="default", twins={"a": twin})
    assert ("a" in build_delta(device)) is in_delta


@pytest.mark.parametrize(
    ("raw", "state", "moves_last_online"),
    [
        ("online", "online", True),
        ("OK", "ok", True),
        ("offline", "offline", False),
        ("unknown", "unknown", False),
        ("Unhealthy", "unhealthy", False),
        ("disconnected", "disconnected", False),
    ],
)
def test_apply_state_when_valid(raw: str, state: str, moves_last_online: bool) -> None:
    device = replace(make_device(), last_online="2020-01-01T00:00:00Z")
    updated = apply_state(device, raw, "2026-11-22T00:00:00Z")
    assert updated.state == state
    assert (updated.last_online == "2026-11-22T00:00:00Z") is moves_last_online


def test_apply_state_when_unknown_is_refused() -> None:
    with pytest.raises(TwinError, match="unknown device state"):
        apply_state(make_device(), "sleepy", "2026-11-22T00:00:00Z")


def test_edge_update_when_optional_twins_reach_the_cap_is_refused() -> None:
    made = {f"o{i}": Twin(f"o{i}", actual=TwinValue("x", 1)) for i in range(3)}
    device = make_device(**made)  # its 3 declared twins do not count
    with pytest.raises(TwinError, match="3 optional twins"):
        apply_edge_update(device, {"new": TwinPatch(actual="1")}, NOW, max_optional=3)
    tombstone = made["o0"]._replace(deleted=True, actual=None)
    device.twins["o0"] = tombstone  # a deleted one frees its place
    change = apply_edge_update(device, {"new": TwinPatch(actual="1")}, NOW, max_optional=3)
    assert change.twins["new"].optional
    assert apply_edge_update(device, {"o1": TwinPatch(actual="2")}, NOW, max_optional=3).twins
