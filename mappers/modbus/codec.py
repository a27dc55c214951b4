"""Modbus registers <-> twin values, KubeEdge-compatible. Pure: no I/O, no pymodbus.

Visitor keys (KubeEdge): `register` (CoilRegister, DiscreteInputRegister, InputRegister,
HoldingRegister), `offset` (address), `limit` (count), `scale`, `isSwap`, `isRegisterSwap`,
`min`/`max` (writes outside are refused). `dataType`: the model's type names as KubeEdge's
mappers use them (int, float, double, boolean/bool, string; the width comes from `limit`), or
ours (int16 uint16 int32 uint32 int64 uint64 float32 float64). By model type name, or without
`dataType`, the type follows KubeEdge: integers are unsigned of `limit` registers, a
FLOAT/DOUBLE of `limit` 2 is float32 and of 4 float64 (of 1: a scaled register, the common
"x0.1" sensor case), STRING is the registers' bytes. Coils and discrete inputs are bits: 0/1
for a numeric property (KubeEdge's `dataType: int` on a CoilRegister), true/false otherwise.

Read path, as KubeEdge's mapper does it:

    registers --isRegisterSwap: reverse word order--> --isSwap: swap bytes in each word-->
    big-endian bytes --> number --> x scale --> text

Writes run the same steps backwards (both swaps are their own inverse).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

TABLES = {
    "CoilRegister": "coil",
    "DiscreteInputRegister": "discrete",
    "InputRegister": "input",
    "HoldingRegister": "holding",
}
WRITABLE = ("coil", "holding")
_FORMATS = {  # dataType -> (struct format, registers)
    "int16": (">h", 1),
    "uint16": (">H", 1),
    "int32": (">i", 2),
    "uint32": (">I", 2),
    "int64": (">q", 4),
    "uint64": (">Q", 4),
    "float32": (">f", 2),
    "float64": (">d", 4),
}
_UNSIGNED_BY_LIMIT = {1: "uint16", 2: "uint32", 4: "uint64"}
_FLOAT_BY_LIMIT = {1: "uint16", 2: "float32", 4: "float64"}
_MODEL_TYPES = {"int": "int", "float": "float", "double": "double", "boolean": "boolean",
                "bool": "boolean", "string": "string"}  # fmt: skip
_NUMERIC = ("int", "float", "double")


class CodecError(Exception):
    """A visitor that cannot work, or a value/reply that does not fit; the message says why."""


@dataclass(frozen=True, slots=True)
class RegisterSpec:
    table: str  # coil | discrete | input | holding
    address: int
    count: int
    data_type: str
    scale: float
    swap: bool
    register_swap: bool
    property_type: str  # twin type of the property: decides how the number is written out
    minimum: float | None = None  # `min`: writes below are refused
    maximum: float | None = None  # `max`: writes above are refused

    @property
    def is_bits(self) -> bool:
        return self.table in ("coil", "discrete")


def _int(config: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    raw = config.get(key, default)
    if isinstance(raw, bool) or not isinstance(raw, (int, str)) or not str(raw).isdigit():
        raise CodecError(f"{key}: {raw!r} is not a whole number")
    value = int(raw)
    if not low <= value <= high:
        raise CodecError(f"{key}: {value} is outside {low}..{high}")
    return value


def _bool(config: Mapping[str, Any], key: str) -> bool:
    raw = config.get(key, False)
    if isinstance(raw, str) and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    if not isinstance(raw, bool):
        raise CodecError(f"{key}: {raw!r} is not true or false")
    return raw


def _default_type(property_type: str, table: str, limit: int) -> str:
    if table in ("coil", "discrete") or property_type == "boolean":
        return "boolean"
    if property_type == "string":
        return "string"
    table_for = _FLOAT_BY_LIMIT if property_type in ("float", "double") else _UNSIGNED_BY_LIMIT
    if limit not in table_for:
        raise CodecError(f"limit: {limit} registers do not hold a {property_type}; use 1, 2 or 4")
    return table_for[limit]


def _number(config: Mapping[str, Any], key: str) -> float | None:
    raw = config.get(key)
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise CodecError(f"{key}: {raw!r} is not a number")
    try:
        value = float(raw)
    except ValueError:
        raise CodecError(f"{key}: {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise CodecError(f"{key}: must be a finite number")
    return value


def _data_type(config: Mapping[str, Any], property_type: str, table: str, limit: int) -> str:
    raw = config.get("dataType")
    if raw is not None and not isinstance(raw, str):
        raise CodecError(f"dataType: {raw!r} is not a type name")
    named = (raw or "").strip().lower()
    if not named or named in _MODEL_TYPES:  # KubeEdge's way: the width comes from `limit`
        return _default_type(_MODEL_TYPES.get(named, property_type), table, limit)
    if named not in _FORMATS and named not in ("boolean", "string"):
        raise CodecError(
            f"dataType: {raw!r} is not one of int, float, double, boolean, string, "
            f"{', '.join(_FORMATS)}"
        )
    return named


def register_spec(config: Mapping[str, Any], property_type: str) -> RegisterSpec:
    """Validate a property's visitor configData; errors name the key."""
    register = config.get("register")
    if register not in TABLES:
        raise CodecError(f"register: {register!r} is not one of {', '.join(TABLES)}")
    table = TABLES[register]
    address = _int(config, "offset", 0, 0, 65535)
    limit = _int(config, "limit", 1, 1, 125)
    data_type = _data_type(config, property_type, table, limit)
    if data_type in _FORMATS:
        width = _FORMATS[data_type][1]
        if "limit" in config and limit != width:
            raise CodecError(f"limit: {data_type} takes {width} registers, not {limit}")
        limit = width
    if table in ("coil", "discrete") and data_type != "boolean":
        raise CodecError(f"dataType: {register} holds bits, not {data_type}")
    scale = _number(config, "scale")
    scale = 1.0 if scale is None else scale
    if scale == 0:
        raise CodecError("scale: must be a finite, non-zero number")
    return RegisterSpec(
        table,
        address,
        limit,
        data_type,
        scale,
        _bool(config, "isSwap"),
        _bool(config, "isRegisterSwap"),
        property_type,
        _number(config, "min"),
        _number(config, "max"),
    )


def _swap(spec: RegisterSpec, words: Sequence[int]) -> list[int]:
    out = list(reversed(words)) if spec.register_swap else list(words)
    if spec.swap:
        out = [((w & 0xFF) << 8) | (w >> 8) for w in out]
    return out


def _text(spec: RegisterSpec, number: float) -> str:
    if spec.property_type == "int":
        return str(int(number))  # KubeEdge truncates a scaled integer
    if spec.property_type in ("float", "double"):
        text = f"{number:.6f}".rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else text
    return str(number)


def decode(spec: RegisterSpec, reply: Sequence[int] | Sequence[bool]) -> str:
    """The twin value (text) for what the device returned."""
    if len(reply) < spec.count:
        raise CodecError(f"device returned {len(reply)} values, expected {spec.count}")
    if spec.is_bits:
        if spec.property_type in _NUMERIC:
            return "1" if reply[0] else "0"
        return "true" if reply[0] else "false"
    words = _swap(spec, [int(w) for w in reply[: spec.count]])
    if any(not 0 <= w <= 0xFFFF for w in words):
        raise CodecError("device returned a register outside 0..65535")
    raw = b"".join(struct.pack(">H", w) for w in words)
    if spec.data_type == "boolean":
        return "true" if any(words) else "false"
    if spec.data_type == "string":
        return raw.rstrip(b"\x00").decode("utf-8", errors="replace")
    (number,) = struct.unpack(_FORMATS[spec.data_type][0], raw)
    if isinstance(number, float) and not math.isfinite(number):
        raise CodecError(f"device returned a non-finite {spec.data_type}")
    return _text(spec, number * spec.scale if spec.scale != 1 else number)


def _check_bounds(spec: RegisterSpec, value: str) -> None:
    if spec.minimum is None and spec.maximum is None:
        return
    try:
        number = float(value)
    except ValueError:
        return  # not a number: the type check below says so
    if spec.minimum is not None and number < spec.minimum:
        raise CodecError(f"{value} is below the visitor's min {spec.minimum:g}")
    if spec.maximum is not None and number > spec.maximum:
        raise CodecError(f"{value} is above the visitor's max {spec.maximum:g}")


def encode(spec: RegisterSpec, value: str) -> list[int] | list[bool]:
    """Registers (or bits) to write for a desired twin value."""
    if spec.table not in WRITABLE:
        raise CodecError(f"{spec.table} registers are read-only in Modbus")
    _check_bounds(spec, value)
    if spec.is_bits and spec.property_type in _NUMERIC:
        try:
            return [float(value) != 0]
        except ValueError:
            raise CodecError(f"{value!r} is not a number") from None
    if spec.data_type == "boolean":
        if value not in ("true", "false"):
            raise CodecError(f"{value!r} is not true or false")
        return [value == "true"] if spec.is_bits else [1 if value == "true" else 0]
    if spec.data_type == "string":
        raw = value.encode()
        if len(raw) > 2 * spec.count:
            raise CodecError(f"{value!r} needs more than {spec.count} registers")
        raw = raw.ljust(2 * spec.count, b"\x00")
        return _swap(spec, [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)])
    fmt, _ = _FORMATS[spec.data_type]
    try:
        number = float(value) / spec.scale
    except ValueError:
        raise CodecError(f"{value!r} is not a number") from None
    packed_value: float = number if fmt[-1] in "fd" else round(number)
    try:
        raw = struct.pack(fmt, packed_value)
    except (struct.error, OverflowError):
        raise CodecError(f"{value} does not fit in {spec.data_type}") from None
    return _swap(spec, [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)])
