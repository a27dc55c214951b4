"""GATT value codec: typed struct decoding (default) and KubeEdge's dataConverter."""

from __future__ import annotations

from typing import Any

import pytest

from mappers.bluetooth.codec import GattCodecError, decode, encode, gatt_spec

TEMP = "00002a6e-0000-1000-8000-00805f9b34fb"


def spec(prop_type: str, **config: Any):
    return gatt_spec({"characteristicUUID": TEMP, **config}, prop_type)


@pytest.mark.parametrize(
    ("prop_type", "config", "data", "text"),
    [
        ("float", {"format": "<h", "scale": 0.01}, (2350).to_bytes(2, "little"), "23.5"),
        (
            "float",
            {"format": "<h", "scale": 0.01},
            (-450).to_bytes(2, "little", signed=True),
            "-4.5",
        ),
        ("int", {"format": "B"}, b"\x57", "87"),  # battery level, uint8
        ("int", {"format": "<H", "byteOffset": 1}, b"\xff\x10\x00", "16"),
        ("float", {"format": "<h", "scale": 0.1, "offset": -40}, (600).to_bytes(2, "little"), "20"),
        ("boolean", {}, b"\x01", "true"),
        ("boolean", {}, b"\x00", "false"),
        ("float", {}, b"\x00\x00\xbc\x41", "23.5"),  # default <f
        ("int", {}, (123456).to_bytes(4, "little"), "123456"),  # default <i
        ("string", {}, b"KEDGE\x00\x00", "KEDGE"),
        ("bytes", {}, b"\x01\x02", "AQI="),
    ],
)
def test_decode_when_typed_format(
    prop_type: str, config: dict[str, Any], data: bytes, text: str
) -> None:
    assert decode(spec(prop_type, **config), data) == text


@pytest.mark.parametrize(
    ("converter", "data", "text"),
    [
        ({"startIndex": 0, "endIndex": 1}, bytes([1, 42]), "142"),  # decimal text joined
        ({"startIndex": 1, "endIndex": 0}, bytes([1, 42]), "421"),  # reversed
        ({"startIndex": 0, "endIndex": 0, "shiftLeft": 2}, bytes([3]), "12"),
        ({"startIndex": 0, "endIndex": 0, "shiftRight": 1}, bytes([9]), "4"),
        (
            {
                "startIndex": 0,
                "endIndex": 1,
                "orderOfOperations": [
                    {"operationType": "Divide", "operationValue": "100"},
                    {"operationType": "Add", "operationValue": "1"},
                ],
            },
            bytes([23, 50]),
            "24.5",  # "2350" / 100 + 1
        ),
    ],
)
def test_decode_when_kubeedge_data_converter(
    converter: dict[str, Any], data: bytes, text: str
) -> None:
    assert decode(spec("float", dataConverter=converter), data) == text


@pytest.mark.parametrize(
    ("prop_type", "config", "value"),
    [
        ("float", {"format": "<h", "scale": 0.01}, "23.5"),
        ("float", {"format": "<h", "scale": 0.1, "offset": -40}, "20"),
        ("int", {"format": "B"}, "87"),
        ("boolean", {}, "true"),
        ("string", {}, "hello"),
        ("double", {}, "-1234.5678"),
        ("bytes", {}, "AQI="),
    ],
)
def test_encode_when_value_valid_round_trips(
    prop_type: str, config: dict[str, Any], value: str
) -> None:
    visitor = spec(prop_type, **config)
    assert decode(visitor, encode(visitor, value)) == value


def test_encode_when_data_write_maps_values_to_bytes() -> None:
    visitor = spec("boolean", dataWrite={"true": [1], "false": "00"})
    assert encode(visitor, "true") == b"\x01" and encode(visitor, "false") == b"\x00"
    with pytest.raises(GattCodecError, match="no bytes for 'maybe'"):
        encode(visitor, "maybe")


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"characteristicUUID": "temp"}, "characteristicUUID"),
        ({"characteristicUUID": TEMP, "format": "<Z"}, "struct format"),
        ({"characteristicUUID": TEMP, "scale": 0}, "scale"),
        ({"characteristicUUID": TEMP, "byteOffset": -1}, "byteOffset"),
        (
            {
                "characteristicUUID": TEMP,
                "dataConverter": {
                    "orderOfOperations": [{"operationType": "Power", "operationValue": 2}]
                },
            },
            "operationType",
        ),
        (
            {
                "characteristicUUID": TEMP,
                "dataConverter": {
                    "orderOfOperations": [{"operationType": "Divide", "operationValue": 0}]
                },
            },
            "division by zero",
        ),
        ({"characteristicUUID": TEMP, "dataWrite": {"on": [300]}}, "dataWrite.on"),
    ],
)
def test_gatt_spec_when_invalid_names_key(config: dict[str, Any], fragment: str) -> None:
    with pytest.raises(GattCodecError, match=fragment):
        gatt_spec(config, "float")


@pytest.mark.parametrize(
    ("prop_type", "config", "data_or_value", "fragment"),
    [
        ("float", {"format": "<h"}, b"\x01", "needs 2"),
        ("float", {"dataConverter": {"startIndex": 5, "endIndex": 6}}, b"\x01", "no bytes 5..6"),
        ("float", {"format": "<f"}, b"\x00\x00\xc0\x7f", "non-finite"),
    ],
)
def test_decode_when_bytes_do_not_fit_is_refused(
    prop_type: str, config: dict[str, Any], data_or_value: bytes, fragment: str
) -> None:
    with pytest.raises(GattCodecError, match=fragment):
        decode(spec(prop_type, **config), data_or_value)


@pytest.mark.parametrize(
    ("prop_type", "config", "value", "fragment"),
    [
        ("int", {"format": "B"}, "300", "does not fit"),
        ("float", {}, "warm", "not a number"),
        ("boolean", {}, "1", "true or false"),
        ("float", {"dataConverter": {"startIndex": 0, "endIndex": 0}}, "1", "needs dataWrite"),
    ],
)
def test_encode_when_value_does_not_fit_is_refused(
    prop_type: str, config: dict[str, Any], value: str, fragment: str
) -> None:
    with pytest.raises(GattCodecError, match=fragment):
        encode(spec(prop_type, **config), value)
