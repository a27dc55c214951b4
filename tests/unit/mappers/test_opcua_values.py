"""OPC UA value conversion, both ways, without a server."""

from __future__ import annotations

from typing import Any

import pytest
from asyncua import ua

from mappers.driver import DeviceRejected, VisitorError
from mappers.opcua.driver import to_text, to_variant


@pytest.mark.parametrize(
    ("value", "type_", "text"),
    [
        (True, "boolean", "true"),
        (0, "boolean", "false"),
        (21.5, "double", "21.5"),
        (0.1, "float", "0.1"),
        (23.999, "int", "23"),
        (42, "int", "42"),
        ("abc", "string", "abc"),
        (b"\x01\x02", "bytes", "AQI="),
        (-0.0, "double", "-0"),
    ],
)
def test_to_text_when_server_value_read(value: Any, type_: str, text: str) -> None:
    assert to_text(value, type_) == text


def test_to_text_when_not_finite_is_rejected() -> None:
    with pytest.raises(DeviceRejected, match="non-finite"):
        to_text(float("nan"), "double")


@pytest.mark.parametrize(
    ("text", "variant", "value"),
    [
        ("true", "Boolean", True),
        ("42", "Int32", 42),
        ("-7", "Int16", -7),
        ("2.5", "Double", 2.5),
        ("2.5", "Float", 2.5),
        ("hi", "String", "hi"),
        ("AQI=", "ByteString", b"\x01\x02"),
    ],
)
def test_to_variant_when_text_valid(text: str, variant: str, value: Any) -> None:
    result = to_variant(text, variant)
    assert result.Value == value and result.VariantType == getattr(ua.VariantType, variant)


@pytest.mark.parametrize(
    ("text", "variant", "fragment"),
    [
        ("yes", "Boolean", "true or false"),
        ("1.5", "Int32", "not a Int32"),
        ("x", "Double", "not a Double"),
        ("1", "Int128", "not an OPC UA variant type"),
        ("not base64!", "ByteString", "ByteString"),
    ],
)
def test_to_variant_when_text_invalid_is_a_visitor_error(
    text: str, variant: str, fragment: str
) -> None:
    with pytest.raises(VisitorError, match=fragment):
        to_variant(text, variant)
