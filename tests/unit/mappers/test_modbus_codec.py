"""Modbus register codec against byte vectors: KubeEdge's defaults, swaps, scale, errors."""

from __future__ import annotations

from typing import Any

import pytest

from mappers.modbus.codec import CodecError, decode, encode, register_spec

F235 = [0x41BC, 0x0000]  # float32 23.5, big-endian words


def spec(prop_type: str = "float", **config: Any):
    return register_spec({"register": "HoldingRegister", **config}, prop_type)


@pytest.mark.parametrize(
    ("prop_type", "config", "registers", "text"),
    [
        ("int", {}, [1234], "1234"),
        ("int", {}, [0xFFFF], "65535"),  # KubeEdge: unsigned by default
        ("int", {"dataType": "int16"}, [0xFFFF], "-1"),
        ("int", {"limit": 2}, [0x0001, 0x0000], "65536"),
        ("int", {"dataType": "int32"}, [0xFFFF, 0xFFFE], "-2"),
        ("int", {"dataType": "int64"}, [0, 0, 0x0001, 0x0000], "65536"),
        ("int", {"scale": 0.1}, [235], "23"),  # scaled integers truncate, as KubeEdge
        ("float", {"scale": 0.1}, [235], "23.5"),
        ("float", {"limit": 2}, F235, "23.5"),
        ("double", {"limit": 4}, [0x4037, 0x8000, 0, 0], "23.5"),
        ("float", {"limit": 2, "isRegisterSwap": True}, [0x0000, 0x41BC], "23.5"),
        ("float", {"limit": 2, "isSwap": True}, [0xBC41, 0x0000], "23.5"),
        ("float", {"limit": 2, "isRegisterSwap": True, "isSwap": True}, [0x0000, 0xBC41], "23.5"),
        ("float", {"limit": 2, "scale": 2}, F235, "47"),
        ("float", {"dataType": "float32"}, [0x3DCC, 0xCCCD], "0.1"),  # float32 noise trimmed
        ("boolean", {}, [1], "true"),
        ("boolean", {}, [0], "false"),
        ("string", {"limit": 4}, [0x5448, 0x4552, 0x4D4F, 0x0000], "THERMO"),
    ],
)
def test_decode_when_registers_known(
    prop_type: str, config: dict[str, Any], registers: list[int], text: str
) -> None:
    assert decode(spec(prop_type, **config), registers) == text


@pytest.mark.parametrize("register", ["CoilRegister", "DiscreteInputRegister"])
def test_decode_when_bits_gives_boolean(register: str) -> None:
    bits = register_spec({"register": register}, "boolean")
    assert decode(bits, [True]) == "true" and decode(bits, [False]) == "false"


@pytest.mark.parametrize(
    ("prop_type", "config", "value", "registers"),
    [
        ("int", {}, "1234", [1234]),
        ("int", {"dataType": "int16"}, "-1", [0xFFFF]),
        ("float", {"scale": 0.1}, "23.5", [235]),
        ("float", {"limit": 2}, "23.5", F235),
        ("float", {"limit": 2, "isRegisterSwap": True, "isSwap": True}, "23.5", [0x0000, 0xBC41]),
        ("boolean", {}, "true", [1]),
        ("string", {"limit": 4}, "THERMO", [0x5448, 0x4552, 0x4D4F, 0x0000]),
    ],
)
def test_encode_when_value_valid_round_trips(
    prop_type: str, config: dict[str, Any], value: str, registers: list[int]
) -> None:
    visitor = spec(prop_type, **config)
    assert encode(visitor, value) == registers
    assert decode(visitor, registers) == value


def test_encode_when_coil_gives_bits() -> None:
    coil = register_spec({"register": "CoilRegister"}, "boolean")
    assert encode(coil, "true") == [True]


@pytest.mark.parametrize(
    ("config", "prop_type", "fragment"),
    [
        ({"register": "Holding"}, "int", "register:"),
        ({"register": "HoldingRegister", "offset": -1}, "int", "offset:"),
        ({"register": "HoldingRegister", "offset": 70000}, "int", "outside"),
        ({"register": "HoldingRegister", "limit": 3}, "int", "limit: 3 registers"),
        ({"register": "HoldingRegister", "dataType": "float32", "limit": 1}, "float", "takes 2"),
        ({"register": "HoldingRegister", "dataType": "int128"}, "int", "dataType:"),
        ({"register": "CoilRegister", "dataType": "int16"}, "int", "holds bits"),
        ({"register": "HoldingRegister", "scale": 0}, "float", "scale:"),
        ({"register": "HoldingRegister", "scale": "big"}, "float", "scale:"),
        ({"register": "HoldingRegister", "isSwap": "maybe"}, "int", "isSwap:"),
    ],
)
def test_register_spec_when_invalid_names_key(
    config: dict[str, Any], prop_type: str, fragment: str
) -> None:
    with pytest.raises(CodecError, match=fragment):
        register_spec(config, prop_type)


@pytest.mark.parametrize(
    ("config", "prop_type", "value", "fragment"),
    [
        ({"register": "InputRegister"}, "int", "1", "read-only"),
        ({"register": "HoldingRegister"}, "int", "70000", "does not fit"),
        ({"register": "HoldingRegister", "dataType": "int16"}, "int", "-40000", "does not fit"),
        ({"register": "HoldingRegister"}, "int", "warm", "not a number"),
        ({"register": "HoldingRegister", "limit": 1}, "string", "TOO LONG", "more than 1"),
        ({"register": "CoilRegister"}, "boolean", "1", "true or false"),
    ],
)
def test_encode_when_value_does_not_fit_is_refused(
    config: dict[str, Any], prop_type: str, value: str, fragment: str
) -> None:
    with pytest.raises(CodecError, match=fragment):
        encode(register_spec(config, prop_type), value)


@pytest.mark.parametrize(
    ("config", "reply", "fragment"),
    [
        ({"limit": 2}, [0x41BC], "returned 1 values"),
        ({"limit": 2}, [0x7F80, 0x0000], "non-finite"),  # +inf
        ({}, [70000], "outside 0..65535"),
    ],
)
def test_decode_when_reply_bad_is_refused(
    config: dict[str, Any], reply: list[int], fragment: str
) -> None:
    with pytest.raises(CodecError, match=fragment):
        decode(spec("float", **config), reply)


@pytest.mark.parametrize(
    ("data_type", "value"),
    [
        ("int16", "-12345"),
        ("uint16", "54321"),
        ("int32", "-7654321"),
        ("uint32", "4000000000"),
        ("int64", "-9000000000000"),
        ("uint64", "18000000000000000000"),
        ("float32", "21.5"),
        ("float64", "-1234.5678"),
    ],
)
@pytest.mark.parametrize("register_swap", [False, True])
def test_encode_when_compared_with_pymodbus_gives_same_registers(
    data_type: str, value: str, register_swap: bool
) -> None:
    """pymodbus's own converter (big-endian bytes, selectable word order) agrees with ours."""
    from pymodbus.client import ModbusTcpClient

    prop_type = "float" if data_type.startswith("float") else "int"
    visitor = spec(prop_type, dataType=data_type, isRegisterSwap=register_swap)
    kind = getattr(ModbusTcpClient.DATATYPE, data_type.upper())
    number = float(value) if prop_type == "float" else int(value)
    order = "little" if register_swap else "big"
    theirs = ModbusTcpClient.convert_to_registers(number, kind, word_order=order)
    assert encode(visitor, value) == theirs
    assert decode(visitor, theirs) == value


@pytest.mark.parametrize(
    ("prop_type", "config", "registers", "text"),
    [
        # kubeedge/examples temperature-sensor-demo: the model's type names, width from limit
        ("float", {"dataType": "float", "limit": 1, "scale": 0.1}, [235], "23.5"),
        ("float", {"dataType": "Float", "limit": 1, "scale": 0.1}, [235], "23.5"),  # any case
        ("float", {"dataType": "float", "limit": 2}, F235, "23.5"),
        ("double", {"dataType": "double", "limit": 4}, [0x4037, 0x8000, 0, 0], "23.5"),
        ("int", {"dataType": "int", "limit": 1}, [0xFFFF], "65535"),  # unsigned, as KubeEdge
        ("int", {"dataType": "int", "limit": 2}, [0x0001, 0x0000], "65536"),
        ("boolean", {"dataType": "bool"}, [1], "true"),
        ("string", {"dataType": "string", "limit": 2}, [0x4F4B, 0x0000], "OK"),
    ],
)
def test_decode_when_data_type_is_a_model_type_name(
    prop_type: str, config: dict[str, Any], registers: list[int], text: str
) -> None:
    assert decode(spec(prop_type, **config), registers) == text


def test_a_coil_with_data_type_int_reads_and_writes_0_and_1() -> None:
    coil = register_spec(
        {"register": "CoilRegister", "dataType": "int", "offset": 0, "limit": 1, "scale": 1}, "int"
    )
    assert decode(coil, [True]) == "1" and decode(coil, [False]) == "0"
    assert encode(coil, "1") == [True] and encode(coil, "0") == [False]
    with pytest.raises(CodecError, match="not a number"):
        encode(coil, "on")


def test_min_and_max_in_the_visitor_bound_writes() -> None:
    bounded = spec("float", dataType="float", scale=0.1, max=100.0, min=1.0)
    assert encode(bounded, "50") == [500]
    with pytest.raises(CodecError, match="above the visitor's max 100"):
        encode(bounded, "120")
    with pytest.raises(CodecError, match="below the visitor's min 1"):
        encode(bounded, "0.5")
    with pytest.raises(CodecError, match="max: 'lots' is not a number"):
        spec("float", max="lots")
