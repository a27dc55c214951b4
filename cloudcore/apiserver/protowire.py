"""Protocol buffers on the wire, read only: fields of a message, and Kubernetes' envelope
(`k8s\\0` then a `runtime.Unknown` holding the TypeMeta and the object's bytes). Every malformed
input raises ProtoError, which the API server answers with 400."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

MAGIC = b"k8s\x00"
VARINT, FIXED64, BYTES, FIXED32 = 0, 1, 2, 5
Value = int | bytes


class ProtoError(ValueError):
    """The body is not valid protobuf, or not what it claims to be."""


def varint(data: bytes, pos: int) -> tuple[int, int]:
    """The varint at `pos` and the position after it."""
    result = shift = 0
    for index in range(pos, min(pos + 10, len(data))):
        byte = data[index]
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, index + 1
        shift += 7
    raise ProtoError("truncated or overlong varint")


def fields(data: bytes) -> Iterator[tuple[int, int, Value]]:
    """(field number, wire type, value) for each field in order; varints and fixed values as
    unsigned ints, length-delimited ones as bytes."""
    pos, end = 0, len(data)
    while pos < end:
        key, pos = varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtoError("field number 0")
        value: Value
        if wire == VARINT:
            value, pos = varint(data, pos)
        elif wire == BYTES:
            length, pos = varint(data, pos)
            if pos + length > end:
                raise ProtoError(f"field {number}: {length} bytes announced, {end - pos} left")
            value, pos = data[pos : pos + length], pos + length
        elif wire in (FIXED64, FIXED32):
            size = 8 if wire == FIXED64 else 4
            if pos + size > end:
                raise ProtoError(f"field {number}: truncated fixed-size value")
            value, pos = int.from_bytes(data[pos : pos + size], "little"), pos + size
        else:
            raise ProtoError(f"field {number}: wire type {wire} is not supported")
        yield number, wire, value


def signed(value: int) -> int:
    """int32 and int64 travel as 64-bit two's complement varints."""
    return value - (1 << 64) if value >= 1 << 63 else value


def double(value: int) -> float:
    return float(struct.unpack("<d", value.to_bytes(8, "little"))[0])


def text(value: bytes, where: str) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError as exc:
        raise ProtoError(f"{where}: a string that is not UTF-8") from exc


@dataclass(frozen=True, slots=True)
class Envelope:
    api_version: str
    kind: str
    raw: bytes


def unwrap(data: bytes) -> Envelope:
    """The TypeMeta and object bytes of a `application/vnd.kubernetes.protobuf` body."""
    if not data.startswith(MAGIC):
        raise ProtoError("no k8s\\0 prefix: not a Kubernetes protobuf body")
    api_version = kind = ""
    raw = b""
    for number, wire, value in fields(data[len(MAGIC) :]):
        if wire != BYTES or not isinstance(value, bytes):
            raise ProtoError(f"envelope field {number}: wire type {wire}, expected bytes")
        if number == 1:  # typeMeta
            for inner, inner_wire, meta in fields(value):
                if inner_wire != BYTES or not isinstance(meta, bytes) or inner not in (1, 2):
                    raise ProtoError(f"TypeMeta field {inner} is not known")
                if inner == 1:
                    api_version = text(meta, "TypeMeta.apiVersion")
                else:
                    kind = text(meta, "TypeMeta.kind")
        elif number == 2:
            raw = value
        elif number == 3 and value:
            raise ProtoError(f"content encoding {text(value, 'contentEncoding')!r} not supported")
    if not kind or not api_version:
        raise ProtoError("the envelope names no apiVersion and kind")
    return Envelope(api_version, kind, raw)
