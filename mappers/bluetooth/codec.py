"""GATT characteristic bytes <-> twin values. Pure: no bleak, no I/O.

Default (documented) decoding: `format`, a Python struct format such as `<h` (little-endian int16,
as most Bluetooth SIG characteristics), read from `byteOffset`, then `x scale + offset`:

    bytes[byteOffset:] --struct.unpack(format)--> number --> x scale + offset --> text

Defaults by property type when `format` is absent: boolean `?`, int `<i`, float `<f`, double `<d`;
string is UTF-8, bytes is base64 of the raw value. Writes run the same steps backwards.

KubeEdge compatibility: a visitor with `dataConverter` decodes as KubeEdge's BLE mapper does:
take bytes `startIndex`..`endIndex` inclusive (reversed when start > end), join the *decimal
text* of each byte ([1, 42] -> "142"), read that as an unsigned integer, shift (`shiftLeft` or
`shiftRight`), then apply `orderOfOperations` (Add, Subtract, Multiply, Divide) in order. Writes
with `dataWrite` send the bytes mapped to the desired value, as KubeEdge does.
"""

from __future__ import annotations

import base64
import math
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_FORMATS = {"boolean": "?", "int": "<i", "float": "<f", "double": "<d"}
_UUID = re.compile(
    r"^[0-9a-fA-F]{4}([0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
    r"[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?$"
)
_OPERATIONS = ("Add", "Subtract", "Multiply", "Divide")


class GattCodecError(Exception):
    """A visitor that cannot work, or bytes/values that do not fit; the message says why."""


@dataclass(frozen=True, slots=True)
class Converter:
    """KubeEdge's dataConverter."""

    start: int
    end: int
    shift_left: int = 0
    shift_right: int = 0
    operations: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class GattSpec:
    uuid: str
    property_type: str
    format: str | None = None
    scale: float = 1.0
    offset: float = 0.0
    byte_offset: int = 0
    converter: Converter | None = None
    data_write: Mapping[str, bytes] = field(default_factory=dict)
    notify: bool = False


def _int(raw: Any, key: str, low: int = 0, high: int = 512) -> int:
    if isinstance(raw, bool) or not isinstance(raw, (int, str)) or not str(raw).isdigit():
        raise GattCodecError(f"{key}: {raw!r} is not a whole number")
    if not low <= int(raw) <= high:
        raise GattCodecError(f"{key}: {raw} is outside {low}..{high}")
    return int(raw)


def _float(raw: Any, key: str, default: float) -> float:
    if raw is None:
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise GattCodecError(f"{key}: {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise GattCodecError(f"{key}: must be finite")
    return value


def _converter(raw: Any) -> Converter:
    if not isinstance(raw, Mapping):
        raise GattCodecError("dataConverter: must be a mapping")
    operations = []
    for i, op in enumerate(raw.get("orderOfOperations") or []):
        kind = op.get("operationType") if isinstance(op, Mapping) else None
        if kind not in _OPERATIONS:
            raise GattCodecError(
                f"dataConverter.orderOfOperations[{i}].operationType: "
                f"{kind!r} is not one of {', '.join(_OPERATIONS)}"
            )
        value = _float(op.get("operationValue"), f"orderOfOperations[{i}].operationValue", 0.0)
        if kind == "Divide" and value == 0:
            raise GattCodecError(f"dataConverter.orderOfOperations[{i}]: division by zero")
        operations.append((kind, value))
    return Converter(
        start=_int(raw.get("startIndex", 0), "dataConverter.startIndex"),
        end=_int(raw.get("endIndex", 0), "dataConverter.endIndex"),
        shift_left=_int(raw.get("shiftLeft", 0), "dataConverter.shiftLeft", 0, 63),
        shift_right=_int(raw.get("shiftRight", 0), "dataConverter.shiftRight", 0, 63),
        operations=tuple(operations),
    )


def _data_write(raw: Any) -> dict[str, bytes]:
    """`{desired value: bytes}`; bytes as a list of ints or a hex string."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise GattCodecError("dataWrite: must map desired values to bytes")
    out = {}
    for value, data in raw.items():
        try:
            out[str(value)] = (
                bytes.fromhex(data) if isinstance(data, str) else bytes(int(b) for b in data)
            )
        except (TypeError, ValueError) as exc:
            raise GattCodecError(f"dataWrite.{value}: not bytes ({exc})") from None
    return out


def gatt_spec(config: Mapping[str, Any], property_type: str) -> GattSpec:
    """Validate a property's visitor configData; errors name the key."""
    uuid = config.get("characteristicUUID")
    if not isinstance(uuid, str) or not _UUID.match(uuid):
        raise GattCodecError(f"characteristicUUID: {uuid!r} is not a 16-bit or 128-bit UUID")
    fmt = config.get("format")
    if fmt is not None:
        try:
            struct.calcsize(str(fmt))
        except struct.error as exc:
            raise GattCodecError(f"format: {fmt!r} is not a struct format ({exc})") from None
    scale = _float(config.get("scale"), "scale", 1.0)
    if scale == 0:
        raise GattCodecError("scale: must not be zero")
    return GattSpec(
        uuid=uuid.lower(),
        property_type=property_type,
        format=None if fmt is None else str(fmt),
        scale=scale,
        offset=_float(config.get("offset"), "offset", 0.0),
        byte_offset=_int(config.get("byteOffset", 0), "byteOffset"),
        converter=None
        if config.get("dataConverter") is None
        else _converter(config["dataConverter"]),
        data_write=_data_write(config.get("dataWrite")),
        notify=config.get("notify") is True,
    )


def _text(number: float, property_type: str) -> str:
    if property_type == "boolean":
        return "true" if number else "false"
    if property_type == "int":
        return str(int(number))
    text = f"{number:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _kubeedge(converter: Converter, data: bytes) -> float:
    if converter.start <= converter.end:
        chosen = data[converter.start : converter.end + 1]
    else:
        chosen = bytes(reversed(data[converter.end : converter.start + 1]))
    if not chosen:
        raise GattCodecError(
            f"value of {len(data)} bytes has no bytes {converter.start}..{converter.end}"
        )
    raw = int("".join(str(b) for b in chosen))
    if converter.shift_left:
        raw <<= converter.shift_left
    elif converter.shift_right:
        raw >>= converter.shift_right
    number = float(raw)
    for kind, value in converter.operations:
        number = {
            "Add": number + value,
            "Subtract": number - value,
            "Multiply": number * value,
            "Divide": number / value,
        }[kind]
    return number


def _format(spec: GattSpec) -> str:
    fmt = spec.format or DEFAULT_FORMATS.get(spec.property_type)
    if fmt is None:
        raise GattCodecError(f"no default format for a {spec.property_type} property; set format")
    return fmt


def decode(spec: GattSpec, data: bytes) -> str:
    """Twin text for a characteristic value."""
    if spec.converter is not None:
        return _text(_kubeedge(spec.converter, data), spec.property_type)
    body = data[spec.byte_offset :]
    if spec.property_type == "string" and spec.format is None:
        return body.rstrip(b"\x00").decode("utf-8", errors="replace")
    if spec.property_type == "bytes" and spec.format is None:
        return base64.b64encode(body).decode()
    fmt = _format(spec)
    size = struct.calcsize(fmt)
    if len(body) < size:
        raise GattCodecError(f"value has {len(body)} bytes after byteOffset, {fmt} needs {size}")
    (raw,) = struct.unpack_from(fmt, body)
    if isinstance(raw, bytes):
        return raw.rstrip(b"\x00").decode("utf-8", errors="replace")
    number = float(raw) * spec.scale + spec.offset
    if not math.isfinite(number):
        raise GattCodecError("device sent a non-finite number")
    return _text(number, spec.property_type)


def encode(spec: GattSpec, value: str) -> bytes:
    """Bytes to write for a desired twin value."""
    if spec.data_write:
        if value not in spec.data_write:
            raise GattCodecError(
                f"dataWrite has no bytes for {value!r}; known: {', '.join(spec.data_write)}"
            )
        return spec.data_write[value]
    if spec.converter is not None:
        raise GattCodecError("a dataConverter visitor needs dataWrite to be written")
    if spec.property_type == "string" and spec.format is None:
        return value.encode()
    if spec.property_type == "bytes" and spec.format is None:
        return base64.b64decode(value, validate=True)
    fmt = _format(spec)
    if spec.property_type == "boolean":
        if value not in ("true", "false"):
            raise GattCodecError(f"{value!r} is not true or false")
        number: float = 1.0 if value == "true" else 0.0
    else:
        try:
            number = (float(value) - spec.offset) / spec.scale
        except ValueError:
            raise GattCodecError(f"{value!r} is not a number") from None
    packed: Any = (
        number if fmt[-1] in "efd" else (bool(number) if fmt[-1] == "?" else round(number))
    )
    try:
        return struct.pack(fmt, packed)
    except (struct.error, OverflowError):
        raise GattCodecError(f"{value} does not fit {fmt}") from None
