"""ZigBee visitor configData and value conversion. Pure: no radio, no zigpy.

A property maps to one ZCL attribute, optionally written through cluster commands:

    endpoint       device endpoint (default 1)
    cluster        cluster id (1026, "0x0402") or zigpy's name ("temperature")
    attribute      attribute id or name ("measured_value")
    scale, offset  reported = raw * scale + offset; writes apply the inverse (defaults 1, 0)
    subscribe      true: bind and configure reporting, so the device pushes changes
    minInterval, maxInterval, reportableChange   reporting settings (s, s, raw units;
                   defaults 1, 300, 1)
    commands       twin value -> cluster command for writes, e.g. {"true": "on", "false": "off"}
    command        one command taking the written value as `argument`, e.g. "move_to_level"
                   with argument "level"; `args` holds its other arguments
    network        "permitJoin": the network's join window in seconds. Desired N > 0 keeps
                   joining open (renewed in N-second windows) until desired is 0; reads give
                   the window held open (N), or 0 once joining is closed, so desired and
                   reported meet and the twin rests.
"""

from __future__ import annotations

import base64
import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

NETWORK_PROPERTIES = frozenset({"permitJoin"})


class ZclCodecError(Exception):
    """The visitor or value does not fit (the message names the key or value)."""


@dataclass(frozen=True, slots=True)
class ZclSpec:
    property_type: str
    endpoint: int = 1
    cluster: int | str = 0
    attribute: int | str | None = None
    scale: float = 1.0
    offset: float = 0.0
    min_interval: int = 1
    max_interval: int = 300
    reportable_change: int = 1
    commands: Mapping[str, str] = field(default_factory=dict)
    command: str | None = None
    argument: str | None = None
    args: Mapping[str, Any] = field(default_factory=dict)
    network: str | None = None


def _ident(raw: Any, key: str) -> int | str:
    """An id as number, hex text, or a zigpy name."""
    if isinstance(raw, bool):
        raise ZclCodecError(f"{key}: {raw!r} is not an id or name")
    if isinstance(raw, int):
        if not 0 <= raw <= 0xFFFF:
            raise ZclCodecError(f"{key}: {raw} is outside 0..0xFFFF")
        return raw
    if isinstance(raw, str) and raw:
        text = raw.strip()
        if text.lower().startswith("0x"):
            try:
                return _ident(int(text, 16), key)
            except ValueError:
                raise ZclCodecError(f"{key}: {raw!r} is not hexadecimal") from None
        return _ident(int(text), key) if text.isdigit() else text
    raise ZclCodecError(f"{key}: {raw!r} is not an id or name")


def _number(config: Mapping[str, Any], key: str, default: float, low: float, high: float) -> float:
    raw = config.get(key, default)
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise ZclCodecError(f"{key}: {raw!r} is not a number")
    try:
        value = float(raw)
    except ValueError:
        raise ZclCodecError(f"{key}: {raw!r} is not a number") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise ZclCodecError(f"{key}: {raw!r} is outside {low:g}..{high:g}")
    return value


def zcl_spec(config: Mapping[str, Any], property_type: str) -> ZclSpec:
    """Validate a property's visitor configData."""
    kind = property_type.lower()
    network = config.get("network")
    if network is not None:
        if network not in NETWORK_PROPERTIES:
            raise ZclCodecError(f"network: {network!r} is not one of {sorted(NETWORK_PROPERTIES)}")
        return ZclSpec(kind, network=str(network))
    if "cluster" not in config:
        raise ZclCodecError("visitor needs cluster (and attribute or commands)")
    commands = config.get("commands") or {}
    if not isinstance(commands, Mapping) or not all(isinstance(v, str) for v in commands.values()):
        raise ZclCodecError("commands: must map twin values to command names")
    command, args = config.get("command"), config.get("args") or {}
    if command is not None and not isinstance(command, str):
        raise ZclCodecError(f"command: {command!r} is not a command name")
    if not isinstance(args, Mapping):
        raise ZclCodecError("args: must map argument names to values")
    argument = config.get("argument")
    if command is not None and not isinstance(argument, str):
        raise ZclCodecError("command needs argument: the name of the argument taking the value")
    attribute = config.get("attribute")
    if attribute is None and not commands and command is None:
        raise ZclCodecError("visitor needs attribute, commands or command")
    scale = _number(config, "scale", 1.0, -1e12, 1e12)
    if scale == 0:
        raise ZclCodecError("scale: must not be 0")
    return ZclSpec(
        property_type=kind,
        endpoint=int(_number(config, "endpoint", 1, 1, 240)),
        cluster=_ident(config["cluster"], "cluster"),
        attribute=None if attribute is None else _ident(attribute, "attribute"),
        scale=scale,
        offset=_number(config, "offset", 0.0, -1e12, 1e12),
        min_interval=int(_number(config, "minInterval", 1, 0, 0xFFFE)),
        max_interval=int(_number(config, "maxInterval", 300, 1, 0xFFFE)),
        reportable_change=int(_number(config, "reportableChange", 1, 0, 2**31)),
        commands={str(k): str(v) for k, v in commands.items()},
        command=command,
        argument=argument if command is not None else None,
        args=dict(args),
    )


def _number_text(number: float, kind: str) -> str:
    if kind == "int":
        return str(int(number))
    text = f"{number:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def to_text(spec: ZclSpec, value: Any) -> str:
    """Twin text for an attribute value as zigpy returns it (int, enum, bool, str, bytes)."""
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, str):
        return value
    if spec.property_type == "boolean" or isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ZclCodecError(f"device returned a non-finite number {value}")
        return _number_text(value * spec.scale + spec.offset, spec.property_type)
    raise ZclCodecError(f"device returned {type(value).__name__}, not a value kedge can show")


def to_raw(spec: ZclSpec, text: str) -> bool | float | str | bytes:
    """The attribute value for desired twin text, before the attribute's own type applies."""
    if spec.property_type == "boolean":
        if text not in ("true", "false"):
            raise ZclCodecError(f"{text!r} is not true or false")
        return text == "true"
    if spec.property_type in ("int", "float", "double"):
        try:
            number = float(text)
        except ValueError:
            raise ZclCodecError(f"{text!r} is not a number") from None
        if not math.isfinite(number):
            raise ZclCodecError(f"{text!r} is not a finite number")
        return (number - spec.offset) / spec.scale
    if spec.property_type == "bytes":
        try:
            return base64.b64decode(text, validate=True)
        except ValueError:
            raise ZclCodecError(f"{text!r} is not base64") from None
    return text
