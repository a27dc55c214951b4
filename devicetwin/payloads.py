"""KubeEdge's MQTT payloads: parse requests into typed patches, build replies. Pure.

Every parse error is a TwinError(400) whose reason names the offending field, so a client gets a
useful `/result` instead of silence.
"""

from __future__ import annotations

import itertools
import re
import uuid
from typing import Any

import orjson

from devicetwin.model import Attempt, Device, Twin, TwinValue, Version
from devicetwin.rules import TwinChange, TwinError, TwinPatch
from devicetwin.spec import mapper_spec
from kedge.mqttwire import Oversized

MAX_PAYLOAD = 64 * 1024
JSON = dict[str, Any]


_EVENT_PREFIX = uuid.uuid4().hex[:12]
_event_counter = itertools.count(1)


def new_event_id() -> str:
    """Unique per process run (random prefix + counter); uuid4 per event showed in profiles."""
    return f"{_EVENT_PREFIX}-{next(_event_counter)}"


def decode(payload: bytes) -> JSON:
    """Bytes -> JSON object, refusing oversized, non-JSON and non-object payloads."""
    size = payload.size if isinstance(payload, Oversized) else len(payload)
    if size > MAX_PAYLOAD:
        raise TwinError(400, f"payload is {size} bytes; the limit is {MAX_PAYLOAD}")
    if not payload or payload.isspace():
        return {}
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise TwinError(400, f"payload is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise TwinError(400, "payload must be a JSON object")
    return body


def event_id_of(body: JSON) -> str:
    event_id = body.get("event_id", "")
    if not isinstance(event_id, str) or len(event_id) > 256:
        raise TwinError(400, "event_id must be a string of at most 256 characters")
    return event_id


def _value_of(name: str, side: str, raw: Any) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or "value" not in raw:
        raise TwinError(400, f"twin.{name}.{side} must be an object with a string 'value'")
    value = raw["value"]
    if not isinstance(value, str):
        raise TwinError(400, f"twin.{name}.{side}.value must be a string, got {_kind(value)}")
    return value


def _version_of(name: str, key: str, raw: Any) -> Version | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise TwinError(400, f"twin.{name}.{key} must be an object {{cloud, edge}}")
    cloud, edge = raw.get("cloud", 0), raw.get("edge", 0)
    for part in (cloud, edge):
        if not isinstance(part, int) or isinstance(part, bool) or part < 0:
            raise TwinError(400, f"twin.{name}.{key} must hold non-negative integers")
    return Version(cloud, edge)


def _kind(value: Any) -> str:
    return type(value).__name__.replace("dict", "object").replace("NoneType", "null")


def _patch_of(name: str, raw: Any) -> TwinPatch:
    if raw is None:
        return TwinPatch(delete=True)
    if not isinstance(raw, dict):
        raise TwinError(400, f"twin.{name} must be an object or null, got {_kind(raw)}")
    metadata = raw.get("metadata", {})
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise TwinError(400, f"twin.{name}.metadata must be an object")
    type_ = metadata.get("type")
    if type_ is not None and not isinstance(type_, str):
        raise TwinError(400, f"twin.{name}.metadata.type must be a string")
    optional = raw.get("optional")
    if optional is not None and not isinstance(optional, bool):
        raise TwinError(400, f"twin.{name}.optional must be true or false")
    if type_ == "deleted":
        return TwinPatch(delete=True)
    error = raw.get("error")
    if error is not None and not isinstance(error, str):
        raise TwinError(400, f"twin.{name}.error must be a string")
    return TwinPatch(
        expected=_value_of(name, "expected", raw.get("expected")),
        actual=_value_of(name, "actual", raw.get("actual")),
        type=type_ or None,
        optional=optional,
        expected_version=_version_of(name, "expected_version", raw.get("expected_version")),
        actual_version=_version_of(name, "actual_version", raw.get("actual_version")),
        attempt=_attempt_of(name, raw.get("attempt")),
        error=error,
    )


def _attempt_of(name: str, raw: Any) -> Attempt | None:
    """Our extension: a mapper's outcome of writing a desired value,
    `{"desired": "35"}` (written) or `{"desired": "35", "error": "why not"}`."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("desired"), str):
        raise TwinError(400, f"twin.{name}.attempt must be an object with a string 'desired'")
    error = raw.get("error", "")
    if not isinstance(error, str):
        raise TwinError(400, f"twin.{name}.attempt.error must be a string")
    return Attempt(raw["desired"], error)


def parse_twin_update(body: JSON) -> dict[str, TwinPatch]:
    twin = body.get("twin")
    if not isinstance(twin, dict) or not twin:
        raise TwinError(400, "payload needs a non-empty 'twin' object")
    return {str(name): _patch_of(str(name), raw) for name, raw in twin.items()}


def parse_state(body: JSON) -> str:
    state = body.get("state")
    if not isinstance(state, str):
        raise TwinError(400, "payload needs a string 'state'")
    return state


PROTOCOL = re.compile(r"^[A-Za-z0-9._-]{1,64}\Z")  # a protocol name, also a topic level


def parse_protocol_filter(body: JSON) -> str | None:
    protocol = body.get("protocol")
    if protocol is not None and (not isinstance(protocol, str) or not PROTOCOL.match(protocol)):
        raise TwinError(400, "'protocol' must be a protocol name (letters, digits, . _ -)")
    return protocol or None


def _side(value: TwinValue | None) -> JSON | None:
    if value is None:
        return None
    return {"value": value.value, "metadata": {"timestamp": value.timestamp}}


def msg_twin(twin: Twin, *, versions: bool) -> JSON:
    """KubeEdge's MsgTwin for one twin, with or without the version vectors."""
    out: JSON = {
        "optional": twin.optional,
        "metadata": {"type": "deleted" if twin.deleted else twin.type},
    }
    if twin.expected is not None:
        out["expected"] = _side(twin.expected)
    if twin.actual is not None:
        out["actual"] = _side(twin.actual)
    if versions:
        out["expected_version"] = twin.expected_version.to_json()
        out["actual_version"] = twin.actual_version.to_json()
    return out


def update_result(event_id: str, now: int, change: TwinChange) -> bytes:
    twins = {name: msg_twin(twin, versions=True) for name, twin in change.twins.items()}
    return orjson.dumps({"event_id": event_id, "timestamp": now, "twin": twins})


def error_result(event_id: str, now: int, error: TwinError) -> bytes:
    return orjson.dumps(
        {"event_id": event_id, "timestamp": now, "code": error.code, "reason": error.reason}
    )


def document(now: int, change: TwinChange) -> bytes:
    twins = {
        name: {
            "last": None if last is None else msg_twin(last, versions=False),
            "current": msg_twin(current, versions=False),
        }
        for name, (last, current) in change.document.items()
    }
    return orjson.dumps({"event_id": new_event_id(), "timestamp": now, "twin": twins})


def delta(now: int, device: Device, values: dict[str, str]) -> bytes:
    twins = {name: msg_twin(device.twins[name], versions=False) for name in values}
    return orjson.dumps(
        {"event_id": new_event_id(), "timestamp": now, "twin": twins, "delta": values}
    )


def visible_twins(device: Device) -> JSON:
    """Twins as `twin/get` shows them: no versions, no tombstones."""
    return {
        name: msg_twin(twin, versions=False)
        for name, twin in device.twins.items()
        if not twin.deleted
    }


def get_result(event_id: str, now: int, device: Device) -> bytes:
    return orjson.dumps({"event_id": event_id, "timestamp": now, "twin": visible_twins(device)})


def state_result(event_id: str, now: int, device: Device) -> bytes:
    body = {"name": device.name, "state": device.state, "lastOnlineTime": device.last_online}
    return orjson.dumps({"event_id": event_id, "timestamp": now, "device": body})


def membership_entry(device: Device, with_spec: bool = True) -> JSON:
    """A device as membership messages carry it: KubeEdge's fields, and for its protocol's
    mappers our merged-spec extension (addresses and credentials: not for everyone)."""
    entry = {
        "id": device.id,
        "name": device.name,
        "namespace": device.namespace,
        "description": device.description,
        "state": device.state,
        "last_online": device.last_online,
        "attributes": {
            key: {"value": value, "optional": False, "metadata": {"type": "string"}}
            for key, value in device.attributes.items()
        },
        "twin": visible_twins(device),
    }
    if with_spec:
        entry["spec"] = mapper_spec(device.spec)
    return entry


def membership_result(event_id: str, now: int, devices: list[Device], with_spec: bool) -> bytes:
    entries = [membership_entry(device, with_spec) for device in devices]
    return orjson.dumps({"event_id": event_id, "timestamp": now, "devices": entries})


def membership_updated(
    now: int, added: list[Device], removed: list[Device], updated: list[Device], with_spec: bool
) -> bytes:
    return orjson.dumps(
        {
            "event_id": new_event_id(),
            "timestamp": now,
            "added_devices": [membership_entry(device, with_spec) for device in added],
            "removed_devices": [
                {"id": d.id, "name": d.name, "namespace": d.namespace} for d in removed
            ],
            "updated_devices": [membership_entry(device, with_spec) for device in updated],
        }
    )
