"""Twin rules: validation, edge and cloud writes, deltas, device state. Pure, no I/O.

KubeEdge's semantics (reference/kubeedge.md section 2), with these deliberate differences:
- `double` and `bytes` are accepted types, `disconnected` is an accepted device state;
- values are checked against the property type (and, for desired values, against the model's
  `minimum`/`maximum` and `accessMode`) instead of KubeEdge's character whitelist;
- an update that names versions (`expected_version`/`actual_version`) is a compare-and-set and
  fails with 409 when the stored version differs;
- a message is applied all or nothing: one bad property rejects the whole update.

Conflict rule (also in the README): an edge write always wins and bumps the `edge` counter; a
cloud write is accepted only if it has seen the edge's latest write, i.e. its version vector is
not behind the stored one on either side.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import NamedTuple

from devicetwin.model import (
    DEVICE_STATES,
    ONLINE_STATES,
    TWIN_TYPES,
    TYPE_ALIASES,
    Attempt,
    Device,
    Twin,
    TwinValue,
    Version,
)

KEY_PATTERN = re.compile(r"^[a-zA-Z0-9\-_.,:/@#]{1,128}\Z")
MAX_VALUE_LENGTH = 4096
MAX_REASON_LENGTH = 512
MAX_TWINS_PER_DEVICE = 1024  # with tombstones
MAX_OPTIONAL_TWINS = 64  # twins clients may add beyond the model's (edgecore's default)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# ASCII digits only, whole string (Python's \d takes "٢٥" and $ a trailing newline)
_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class TwinError(Exception):
    """A request the twin refuses; `code` is the result code KubeEdge clients expect."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class TwinPatch(NamedTuple):
    """One property of an edge update; `None` fields were absent from the request."""

    expected: str | None = None
    actual: str | None = None
    type: str | None = None
    optional: bool | None = None
    expected_version: Version | None = None
    actual_version: Version | None = None
    delete: bool = False
    attempt: Attempt | None = None  # a mapper's outcome of writing a desired value
    error: str | None = None  # a mapper's reason it cannot serve the property ("" clears it)
    observed: str | None = None  # with `actual`: the desired value the device had (DMI says so)


class TwinChange(NamedTuple):
    """What an accepted update did: new twins, `{name: (last, current)}` for real changes,
    the properties whose desired value was written and is not reached yet (they get a delta),
    and whether anything the cloud shows besides the values changed (sync state, errors)."""

    twins: dict[str, Twin]
    document: dict[str, tuple[Twin | None, Twin]]
    desired: tuple[str, ...] = ()
    status_changed: bool = False


def normalize_type(raw: str) -> str:
    """Map a model or metadata type (`FLOAT`, `integer`, ...) to one of TWIN_TYPES."""
    lowered = raw.strip().lower()
    lowered = TYPE_ALIASES.get(lowered, lowered)
    if lowered not in TWIN_TYPES:
        raise TwinError(400, f"unknown type {raw!r}; expected one of {', '.join(TWIN_TYPES)}")
    return lowered


def validate_key(name: str) -> None:
    if not KEY_PATTERN.match(name):
        raise TwinError(
            400, f"invalid property name {name!r}: 1-128 characters of a-z A-Z 0-9 - _ . , : / @ #"
        )


def validate_value(name: str, value: str, type_: str) -> None:
    """Refuse a value that does not read as `type_`; error names the property."""
    if len(value) > MAX_VALUE_LENGTH:
        raise TwinError(400, f"{name}: value longer than {MAX_VALUE_LENGTH} characters")
    if _CONTROL.search(value):
        raise TwinError(400, f"{name}: value contains control characters")
    if type_ == "int":
        if not _INT.fullmatch(value) or not INT64_MIN <= int(value) <= INT64_MAX:
            raise TwinError(400, f"{name}: {value!r} is not a 64-bit integer")
    elif type_ in ("float", "double"):
        if not _FLOAT.fullmatch(value) or not math.isfinite(float(value)):
            raise TwinError(400, f"{name}: {value!r} is not a finite {type_}")
    elif type_ == "boolean":
        if value not in ("true", "false"):
            raise TwinError(400, f"{name}: {value!r} is not a boolean (true or false)")
    elif type_ == "bytes":
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise TwinError(400, f"{name}: {value!r} is not base64-encoded bytes") from exc


def _check_desired_allowed(device: Device, name: str, value: str, type_: str) -> None:
    prop = device.properties.get(name)
    if prop is None:
        return
    if prop.access_mode == "ReadOnly":
        raise TwinError(400, f"{name}: property is ReadOnly; desired values cannot be set")
    if type_ in ("int", "float", "double") and value != "":
        number = float(value)
        if prop.minimum is not None and number < prop.minimum:
            raise TwinError(400, f"{name}: {value} is below the minimum {prop.minimum:g}")
        if prop.maximum is not None and number > prop.maximum:
            raise TwinError(400, f"{name}: {value} is above the maximum {prop.maximum:g}")


def _check_version(name: str, side: str, wanted: Version | None, stored: Version) -> None:
    if wanted is not None and wanted != stored:
        raise TwinError(
            409,
            f"{name}: {side} version is {stored.to_json()}, request expected {wanted.to_json()}",
        )


def _resolve_type(device: Device, twin: Twin | None, patch: TwinPatch, name: str) -> str:
    declared = name in device.properties
    if patch.type is None:
        return twin.type if twin is not None else "string"
    wanted = normalize_type(patch.type)
    if declared and twin is not None and wanted != twin.type:
        raise TwinError(400, f"{name}: type is {twin.type} in the device model, not {wanted}")
    return wanted


def _delete(device: Device, name: str, twin: Twin | None) -> Twin | None:
    if twin is None or twin.deleted:
        return None
    if name in device.properties or not twin.optional:
        raise TwinError(400, f"{name}: declared by the device model, cannot be deleted")
    return twin._replace(
        deleted=True,
        expected=None,
        actual=None,
        observed_desired=None,
        expected_version=twin.expected_version.bump_edge(),
        actual_version=twin.actual_version.bump_edge(),
    )


def _update(device: Device, name: str, twin: Twin | None, patch: TwinPatch, now: int) -> Twin:
    if twin is None and patch.expected is None and patch.actual is None:
        raise TwinError(400, f"{name}: no such property (attempt and error need an existing one)")
    type_ = _resolve_type(device, twin, patch, name)
    declared = name in device.properties
    if declared and patch.optional:
        raise TwinError(400, f"{name}: declared by the device model, cannot be made optional")
    old = twin if twin is not None else Twin(name=name, type=type_, optional=True)
    expected, expected_version = old.expected, old.expected_version
    actual, actual_version, observed = old.actual, old.actual_version, old.observed_desired
    if patch.expected is not None:
        validate_value(name, patch.expected, type_)
        _check_desired_allowed(device, name, patch.expected, type_)
        _check_version(name, "expected", patch.expected_version, expected_version)
        expected, expected_version = TwinValue(patch.expected, now), expected_version.bump_edge()
    if patch.actual is not None:
        validate_value(name, patch.actual, type_)
        _check_version(name, "actual", patch.actual_version, actual_version)
        actual, actual_version = TwinValue(patch.actual, now), actual_version.bump_edge()
        observed = expected if patch.observed is None else TwinValue(patch.observed, now)
    attempt = old.attempt if patch.attempt is None else _checked_attempt(name, patch.attempt)
    error = old.error if patch.error is None else _checked_reason(name, "error", patch.error)
    return Twin(
        name=name,
        type=type_,
        optional=old.optional if patch.optional is None or declared else patch.optional,
        deleted=False,
        expected=expected,
        actual=actual,
        observed_desired=observed,
        expected_version=expected_version,
        actual_version=actual_version,
        description=old.description,
        attempt=attempt,
        error=error,
        overruled=old.overruled,
    )


def _checked_reason(name: str, field: str, text: str) -> str:
    if len(text) > MAX_REASON_LENGTH:
        raise TwinError(400, f"{name}: {field} longer than {MAX_REASON_LENGTH} characters")
    if _CONTROL.search(text):
        raise TwinError(400, f"{name}: {field} contains control characters")
    return text


def _checked_attempt(name: str, attempt: Attempt) -> Attempt:
    if len(attempt.desired) > MAX_VALUE_LENGTH:
        raise TwinError(400, f"{name}: attempt.desired longer than {MAX_VALUE_LENGTH} characters")
    return Attempt(attempt.desired, _checked_reason(name, "attempt.error", attempt.error))


def _changed(last: Twin | None, current: Twin) -> bool:
    if last is None:
        return True
    return (
        last.deleted != current.deleted
        or _value(last.expected) != _value(current.expected)
        or _value(last.actual) != _value(current.actual)
    )


def _value(side: TwinValue | None) -> str | None:
    return None if side is None else side.value


def _check_room(device: Device, new_twins: Mapping[str, Twin], name: str, limit: int) -> None:
    """A twin the model does not declare is an optional one a client makes: at most `limit`."""
    if len(device.twins) + len(new_twins) >= MAX_TWINS_PER_DEVICE:
        raise TwinError(400, f"{name}: device already has {MAX_TWINS_PER_DEVICE} twins")
    made = sum(1 for t in (*device.twins.values(), *new_twins.values())
               if t.optional and not t.deleted)  # fmt: skip
    if made >= limit:
        raise TwinError(400, f"{name}: device already has {limit} optional twins (the limit)")


def apply_edge_update(
    device: Device,
    patches: Mapping[str, TwinPatch],
    now: int,
    max_optional: int = MAX_OPTIONAL_TWINS,
) -> TwinChange:
    """Apply an edge-side (MQTT or HTTP) twin update, all or nothing.

    Raises TwinError(400) for invalid keys/values/types and TwinError(409) for a failed
    compare-and-set; on error nothing of the update is applied.
    """
    new_twins: dict[str, Twin] = {}
    document: dict[str, tuple[Twin | None, Twin]] = {}
    desired: list[str] = []
    status_changed = False
    for name, patch in patches.items():
        twin = device.twins.get(name)
        if twin is None:  # existing twins were validated when they were created
            validate_key(name)
        if patch.delete:
            updated = _delete(device, name, twin)
            if updated is None:
                continue
        else:
            if twin is None or twin.deleted:
                _check_room(device, new_twins, name, max_optional)
            updated = _update(device, name, twin, patch, now)
        new_twins[name] = updated
        if _changed(twin, updated):
            document[name] = (twin, updated)
        if patch.expected is not None and updated.has_delta():
            desired.append(name)
        status_changed = status_changed or _status(twin) != _status(updated)
    return TwinChange(new_twins, document, tuple(desired), status_changed)


def apply_cloud_desired(twin: Twin, value: str, version: Version, now: int) -> Twin | None:
    """Apply a desired value written by the cloud, or return None if the edge wins.

    Rejected when the stored version is ahead on either side: the cloud is stale, or the edge
    changed the value after the cloud last saw it. Accepted writes adopt the cloud's vector.
    """
    stored = twin.expected_version
    if stored.cloud > version.cloud or stored.edge > version.edge:
        return None
    validate_value(twin.name, value, twin.type)
    return twin._replace(expected=TwinValue(value, now), expected_version=version, deleted=False)


def build_delta(device: Device, names: Iterable[str] | None = None) -> dict[str, str]:
    """`{property: desired}` for the twins (of `names`, default all) whose desired value is
    not reached. Deltas go out when desired changes, not as an echo of every report."""
    twins = device.twins if names is None else {n: device.twins[n] for n in names}
    return {
        name: twin.expected.value
        for name, twin in twins.items()
        if twin.has_delta() and twin.expected is not None
    }


def sync_reason(twin: Twin) -> str:
    """Why a twin's desired value is not reached ("" when it is), for people to read."""
    if not twin.has_delta() or twin.expected is None:
        return ""
    desired = twin.expected.value
    attempt = twin.attempt
    if attempt is not None and attempt.desired == desired:
        if attempt.error:
            return f"write refused: {attempt.error}"
        if twin.actual is not None:
            return f"device reports {twin.actual.value} for desired {desired}"
        return f"written, but the device has not reported {desired}"
    if twin.error:
        return f"{desired} not written: {twin.error}"
    return f"waiting for the mapper to write {desired}"


def unreached(twin: Twin) -> bool:
    """The mapper acted on the current desired value and the device does not show it: a
    problem worth a condition, unlike a write that is merely pending."""
    return (
        twin.has_delta()
        and twin.expected is not None
        and twin.attempt is not None
        and twin.attempt.desired == twin.expected.value
    )


def _status(twin: Twin | None) -> tuple[str, str, bool]:
    """What the cloud shows of a twin besides its values."""
    if twin is None:
        return "", "", False
    return sync_reason(twin) if unreached(twin) else "", twin.error, twin.overruled is not None


def normalize_state(raw: str) -> str:
    state = raw.strip().lower()
    if state not in DEVICE_STATES:
        raise TwinError(400, f"unknown device state {raw!r}; expected one of {DEVICE_STATES}")
    return state


def apply_state(device: Device, raw: str, now_rfc3339: str) -> Device:
    """New device state; `last_online` moves only when the device says it is online or ok."""
    state = normalize_state(raw)
    last_online = now_rfc3339 if state in ONLINE_STATES else device.last_online
    return replace(device, state=state, last_online=last_online)
