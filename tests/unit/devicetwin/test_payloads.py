"""Payload codec: requests parse into patches; every malformed field gets a 400 naming it."""

from __future__ import annotations

import orjson
import pytest

from devicetwin.model import Device, DeviceId, Twin, TwinValue, Version
from devicetwin.payloads import (
    MAX_PAYLOAD,
    decode,
    delta,
    document,
    error_result,
    get_result,
    membership_result,
    msg_twin,
    parse_twin_update,
)
from devicetwin.rules import TwinChange, TwinError, TwinPatch


def test_parse_twin_update_when_kubeedge_example() -> None:
    body = decode(
        b'{"event_id":"","timestamp":1718000000000,"twin":{"temperature":'
        b'{"actual":{"value":"23.5"},"expected":{"value":"25"},"metadata":{"type":"float"}}}}'
    )
    assert parse_twin_update(body) == {
        "temperature": TwinPatch(expected="25", actual="23.5", type="float")
    }


def test_parse_twin_update_when_null_or_deleted_type_means_delete() -> None:
    body = decode(b'{"twin":{"a":null,"b":{"metadata":{"type":"deleted"}}}}')
    assert parse_twin_update(body) == {"a": TwinPatch(delete=True), "b": TwinPatch(delete=True)}


def test_parse_twin_update_when_versions_given() -> None:
    body = decode(
        b'{"twin":{"a":{"expected":{"value":"1"},"expected_version":{"cloud":2,"edge":3}}}}'
    )
    assert parse_twin_update(body)["a"].expected_version == Version(2, 3)


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1,2]", "must be a JSON object"),
        (b"\xff\xfe", "not valid JSON"),
        (b'{"twin": {}}', "non-empty 'twin'"),
        (b'{"twin": []}', "non-empty 'twin'"),
        (b'{"twin": {"a": 5}}', "twin.a must be an object or null"),
        (b'{"twin": {"a": {"actual": {"value": 23.5}}}}', "twin.a.actual.value must be a string"),
        (b'{"twin": {"a": {"actual": "23"}}}', "twin.a.actual must be an object"),
        (b'{"twin": {"a": {"metadata": []}}}', "twin.a.metadata must be an object"),
        (b'{"twin": {"a": {"metadata": {"type": 3}}}}', "metadata.type must be a string"),
        (b'{"twin": {"a": {"optional": "yes"}}}', "optional must be true or false"),
        (b'{"twin": {"a": {"expected_version": {"cloud": -1}}}}', "non-negative integers"),
        (b'{"twin": {"a": {"actual_version": 7}}}', "must be an object {cloud, edge}"),
        (b" " * (MAX_PAYLOAD + 1), "the limit is"),
    ],
)
def test_parse_twin_update_when_malformed_is_400(payload: bytes, fragment: str) -> None:
    with pytest.raises(TwinError) as err:
        parse_twin_update(decode(payload))
    assert err.value.code == 400 and fragment in err.value.reason


def test_error_result_when_built_has_code_and_reason() -> None:
    body = orjson.loads(error_result("e1", 5, TwinError(404, "no device")))
    assert body == {"event_id": "e1", "timestamp": 5, "code": 404, "reason": "no device"}


def _device() -> Device:
    twins = {
        "a": Twin(
            "a",
            "int",
            False,
            expected=TwinValue("2", 1),
            actual=TwinValue("1", 1),
            expected_version=Version(1, 0),
        ),
        "gone": Twin("gone", deleted=True),
    }
    return Device(id=DeviceId("ns/d"), name="d", namespace="ns", twins=twins, spec={"model": "m"})


def test_get_result_when_built_hides_versions_and_tombstones() -> None:
    body = orjson.loads(get_result("e", 9, _device()))
    assert body["twin"] == {
        "a": {
            "optional": False,
            "metadata": {"type": "int"},
            "expected": {"value": "2", "metadata": {"timestamp": 1}},
            "actual": {"value": "1", "metadata": {"timestamp": 1}},
        }
    }


def test_delta_when_built_carries_delta_map() -> None:
    body = orjson.loads(delta(9, _device(), {"a": "2"}))
    assert body["delta"] == {"a": "2"} and "a" in body["twin"] and body["event_id"]


def test_membership_result_carries_the_spec_only_for_its_protocols_mappers() -> None:
    [entry] = orjson.loads(membership_result("e", 9, [_device()], True))["devices"]
    assert entry["id"] == "ns/d" and entry["spec"] == {"model": "m"} and "gone" not in entry["twin"]
    [plain] = orjson.loads(membership_result("e", 9, [_device()], False))["devices"]
    assert plain["id"] == "ns/d" and "spec" not in plain  # KubeEdge's fields, no addresses


def test_document_when_composed_equals_plain_json_encoding() -> None:
    old = Twin("a", "int", False, actual=TwinValue("1", 1))
    new = old._replace(actual=TwinValue("2", 2))
    created = Twin('we"ird', "string", True, actual=TwinValue("x", 2))
    change = TwinChange({}, {"a": (old, new), 'we"ird': (None, created)})
    body = orjson.loads(document(7, change))
    assert body["timestamp"] == 7 and body["event_id"]
    assert body["twin"] == {
        "a": {"last": msg_twin(old, versions=False), "current": msg_twin(new, versions=False)},
        'we"ird': {"last": None, "current": msg_twin(created, versions=False)},
    }
