"""ZigBee visitor parsing and value conversion: plain values in, plain values out."""

from __future__ import annotations

import enum
from typing import Any

import pytest

from mappers.zigbee.codec import ZclCodecError, to_raw, to_text, zcl_spec


class Mode(enum.IntEnum):
    HEAT = 4


def test_ids_accept_numbers_hex_and_names() -> None:
    spec = zcl_spec({"cluster": "0x0402", "attribute": "measured_value"}, "FLOAT")
    assert (spec.cluster, spec.attribute, spec.endpoint) == (0x0402, "measured_value", 1)
    spec = zcl_spec({"cluster": 6, "attribute": "0", "endpoint": 11}, "boolean")
    assert (spec.cluster, spec.attribute, spec.endpoint) == (6, 0, 11)
    assert zcl_spec({"network": "permitJoin"}, "int").network == "permitJoin"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "visitor needs cluster"),
        ({"cluster": 6}, "attribute, commands or command"),
        ({"cluster": 70000, "attribute": 0}, "cluster: 70000 is outside"),
        ({"cluster": "0xZZ", "attribute": 0}, "not hexadecimal"),
        ({"cluster": True, "attribute": 0}, "not an id or name"),
        ({"cluster": 6, "attribute": [1]}, "attribute: [1]"),
        ({"cluster": 6, "attribute": 0, "endpoint": 241}, "endpoint: 241 is outside"),
        ({"cluster": 6, "attribute": 0, "scale": 0}, "scale: must not be 0"),
        ({"cluster": 6, "attribute": 0, "scale": "x"}, "scale: 'x' is not a number"),
        ({"cluster": 6, "attribute": 0, "maxInterval": 0}, "maxInterval: 0 is outside"),
        ({"cluster": 6, "commands": ["on"]}, "commands: must map"),
        ({"cluster": 8, "command": "move_to_level"}, "command needs argument"),
        ({"cluster": 8, "command": 3, "argument": "level"}, "command: 3"),
        ({"cluster": 8, "command": "x", "argument": "l", "args": [1]}, "args: must map"),
        ({"network": "reset"}, "network: 'reset' is not one of"),
    ],
)
def test_bad_visitors_name_the_key(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ZclCodecError, match=message.replace("[", r"\[").replace("(", r"\(")):
        zcl_spec(config, "int")


@pytest.mark.parametrize(
    ("kind", "visitor", "value", "text"),
    [
        ("float", {"scale": 0.01}, 1950, "19.5"),
        ("float", {"scale": 0.01}, -5, "-0.05"),
        ("int", {"scale": 0.01}, 2400, "24"),
        ("int", {"offset": -40}, 60, "20"),
        ("boolean", {}, 1, "true"),
        ("boolean", {}, False, "false"),
        ("int", {}, Mode.HEAT, "4"),
        ("string", {}, "KEDGE-TH-0001", "KEDGE-TH-0001"),
        ("bytes", {}, b"\x01\x02", "AQI="),
    ],
)
def test_values_become_twin_text(kind: str, visitor: dict[str, Any], value: Any, text: str) -> None:
    spec = zcl_spec({"cluster": 1, "attribute": 0, **visitor}, kind)
    assert to_text(spec, value) == text


def test_non_finite_and_unknown_values_are_refused() -> None:
    spec = zcl_spec({"cluster": 1, "attribute": 0}, "float")
    with pytest.raises(ZclCodecError, match="non-finite"):
        to_text(spec, float("nan"))
    with pytest.raises(ZclCodecError, match="not a value"):
        to_text(spec, object())


@pytest.mark.parametrize(
    ("kind", "visitor", "text", "raw"),
    [
        ("float", {"scale": 0.01}, "24", 2400.0),
        ("int", {"offset": -40}, "20", 60.0),
        ("boolean", {}, "true", True),
        ("string", {}, "hello", "hello"),
        ("bytes", {}, "AQI=", b"\x01\x02"),
    ],
)
def test_desired_text_becomes_raw_values(
    kind: str, visitor: dict[str, Any], text: str, raw: Any
) -> None:
    assert to_raw(zcl_spec({"cluster": 1, "attribute": 0, **visitor}, kind), text) == raw


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        ("boolean", "yes", "not true or false"),
        ("int", "warm", "not a number"),
        ("float", "inf", "not a finite number"),
        ("bytes", "***", "not base64"),
    ],
)
def test_desired_text_that_does_not_fit_is_refused(kind: str, text: str, message: str) -> None:
    with pytest.raises(ZclCodecError, match=message):
        to_raw(zcl_spec({"cluster": 1, "attribute": 0}, kind), text)
