"""Kubernetes protobuf objects into the JSON objects the API server stores: the message table
(`k8s.messages`, facts from k8s.io/api) drives a generic decoder; JSON comes out as Go's
encoding/json would write it (omitempty, pointers, embedded structs, Kubernetes' own types).
A field the table does not know is refused rather than dropped, so nothing sent is lost."""

from __future__ import annotations

import base64
import datetime
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from cloudcore.apiserver.protowire import (
    BYTES,
    FIXED64,
    VARINT,
    ProtoError,
    Value,
    double,
    fields,
    signed,
    text,
    unwrap,
    varint,
)

# the kinds a protobuf body may carry, by apiVersion (DeleteOptions under any of them)
KINDS = {
    "v1": {"Pod", "ConfigMap", "Secret", "Namespace", "ServiceAccount", "Service", "Node", "Event"},
    "apps/v1": {"Deployment", "DaemonSet", "ReplicaSet", "ControllerRevision"},
    "rbac.authorization.k8s.io/v1": {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"},
    "coordination.k8s.io/v1": {"Lease"},
    "meta.k8s.io/v1": set(),
}
SCALARS = {"str": BYTES, "bytes": BYTES, "int": VARINT, "bool": VARINT, "float": FIXED64}
YEAR_ONE = -62135596800  # Go's zero time.Time, in Unix seconds


@dataclass(frozen=True, slots=True)
class Field:
    json: str
    kind: str  # a scalar, a special type or a message name
    repeated: bool
    map: bool
    flag: str  # "?" pointer, "!" always shown, "^" embedded, "" omitted when zero


Messages = dict[str, dict[int, Field]]


def _field(spec: str) -> tuple[int, Field]:
    name, _, rest = spec.partition("=")
    number, _, kind = rest.partition(":")
    flag = name[-1] if name[-1] in "?!^" else ""
    repeated, kind = kind.startswith("*"), kind.lstrip("*")
    is_map, kind = kind.startswith("map:"), kind.removeprefix("map:")
    return int(number), Field(name.rstrip("?!^"), kind, repeated, is_map, flag)


@functools.cache
def messages() -> Messages:
    table: Messages = {}
    source = resources.files("cloudcore.apiserver").joinpath("k8s.messages").read_text()
    for line in source.splitlines():
        if line and not line.startswith("#"):
            name, *specs = line.split()
            table[name] = dict(_field(spec) for spec in specs)
    return table


class Unsupported(ProtoError):
    """A well-formed body of a kind this server takes only as JSON."""


def decode(message: str, data: bytes) -> dict[str, Any]:
    """The JSON object of the `message` encoded in `data`."""
    return _Decoder(messages()).message(message, data)


def decode_body(data: bytes) -> dict[str, Any]:
    """The object in an `application/vnd.kubernetes.protobuf` request body."""
    envelope = unwrap(data)
    kinds = KINDS.get(envelope.api_version)
    if kinds is None or (envelope.kind not in kinds and envelope.kind != "DeleteOptions"):
        raise Unsupported(f"{envelope.api_version} {envelope.kind} is taken as JSON only")
    return {"apiVersion": envelope.api_version, "kind": envelope.kind,
            **decode(envelope.kind, envelope.raw)}  # fmt: skip


class _Decoder:
    def __init__(self, table: Messages) -> None:
        self.table = table

    def message(self, name: str, data: bytes) -> dict[str, Any]:
        known, out = self.table[name], dict[str, Any]()
        for number, wire, value in fields(data):
            field = known.get(number)
            if field is None:
                raise ProtoError(f"{name} has no field {number} known to this server")
            where = f"{name}.{field.json}"
            if field.map:
                key, item = self._entry(field, wire, value, where)
                out.setdefault(field.json, {})[key] = item
            elif field.repeated and field.kind in ("int", "bool") and wire == BYTES:
                out.setdefault(field.json, []).extend(self._packed(field, value, where))
            elif field.repeated:
                out.setdefault(field.json, []).append(self.value(field.kind, wire, value, where))
            else:
                out[field.json] = self.value(field.kind, wire, value, where)
        return self._as_go(known, out)

    def _as_go(self, known: dict[int, Field], out: dict[str, Any]) -> dict[str, Any]:
        """Embedded structs merged into their parent, zero values of omitempty fields gone."""
        for field in known.values():
            if field.json not in out:
                continue
            if field.flag == "^":
                out.update(out.pop(field.json))
            elif field.flag == "" and _omitted(field, out[field.json]):
                del out[field.json]
        return out

    def _entry(self, field: Field, wire: int, value: Value, where: str) -> tuple[str, Any]:
        raw = _bytes(wire, value, where)
        key, item = "", self.value(field.kind, BYTES, b"", where) if field.kind != "int" else 0
        for number, inner_wire, inner in fields(raw):
            if number == 1:
                key = text(_bytes(inner_wire, inner, where), where)
            elif number == 2:
                item = self.value(field.kind, inner_wire, inner, where)
            else:
                raise ProtoError(f"{where}: a map entry with field {number}")
        return key, item

    def _packed(self, field: Field, value: Value, where: str) -> list[Any]:
        return [self.value(field.kind, VARINT, item, where)
                for _number, _wire, item in _varints(_bytes(BYTES, value, where))]  # fmt: skip

    def value(self, kind: str, wire: int, value: Value, where: str) -> Any:
        expected = SCALARS.get(kind, BYTES)
        if wire != expected:
            raise ProtoError(f"{where}: wire type {wire}, expected {expected}")
        if kind == "int":
            return signed(int(value))
        if kind == "bool":
            return bool(value)
        if kind == "float":
            return double(int(value))
        raw = _bytes(wire, value, where)
        if kind == "str":
            return text(raw, where)
        if kind == "bytes":
            return base64.b64encode(raw).decode()
        special = _SPECIAL.get(kind)
        if special is not None:
            return special(self.message_of(raw, where), where)
        if kind not in self.table:
            raise ProtoError(f"{where}: type {kind} is not known to this server")
        return self.message(kind, raw)

    @staticmethod
    def message_of(raw: bytes, where: str) -> dict[int, Value]:
        return {number: value for number, _wire, value in fields(raw)}


def _omitted(field: Field, value: Any) -> bool:
    """Go's omitempty: zero scalars, empty lists and maps; never a struct."""
    if isinstance(value, dict):
        return field.map and not value
    return value in ("", 0, False, [])


def _varints(data: bytes) -> list[tuple[int, int, int]]:
    """Packed repeated varints, as (0, VARINT, value) triples."""
    out, pos = [], 0
    while pos < len(data):
        item, pos = varint(data, pos)
        out.append((0, VARINT, item))
    return out


def _bytes(wire: int, value: Value, where: str) -> bytes:
    if wire != BYTES or not isinstance(value, bytes):
        raise ProtoError(f"{where}: wire type {wire}, expected a length-delimited value")
    return value


def _int(parts: dict[int, Value], number: int, where: str) -> int:
    value = parts.get(number, 0)
    if not isinstance(value, int):
        raise ProtoError(f"{where}: field {number} is not a number")
    return signed(value)


def _time(parts: dict[int, Value], where: str, micro: bool = False) -> str | None:
    seconds, nanos = _int(parts, 1, where), _int(parts, 2, where)
    if not parts or seconds == YEAR_ONE and nanos == 0:
        return None  # Go's zero time: null in JSON
    try:
        stamp = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise ProtoError(f"{where}: {seconds} s is not a time") from exc
    if not micro:
        return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{nanos // 1000:06d}Z"


def _int_or_string(parts: dict[int, Value], where: str) -> int | str:
    if _int(parts, 1, where) == 1:
        return text(_bytes(BYTES, parts.get(3, b""), where), where)
    return _int(parts, 2, where)


def _quantity(parts: dict[int, Value], where: str) -> str:
    return text(_bytes(BYTES, parts.get(1, b""), where), where)


def _raw(parts: dict[int, Value], where: str) -> Any:
    raw = _bytes(BYTES, parts.get(1, b""), where)
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ProtoError(f"{where}: raw value is not JSON") from exc


_SPECIAL: dict[str, Callable[[dict[int, Value], str], Any]] = {
    "Time": _time,
    "MicroTime": functools.partial(_time, micro=True),
    "IntOrString": _int_or_string,
    "Quantity": _quantity,
    "Raw": _raw,
}
