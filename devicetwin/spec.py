"""v1beta1 DeviceModel/Device manifests -> validated, model-merged devices. Pure.

Every error names the source file, the document's position and kind/name, and the field path,
because a user fixing YAML needs all three. Model defaults merge into the device key by key
(`protocolConfigData`, property visitors), the device winning, as KubeEdge v1.22+ does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from devicetwin.memberspec import DEFAULT_CYCLE_MS, PropertyConfig
from devicetwin.model import Device, PropertySpec, Twin, TwinValue, Version, device_id
from devicetwin.retention import ANNOTATION as RETENTION
from devicetwin.retention import Rule, parse_rule
from devicetwin.rules import KEY_PATTERN, TwinError, normalize_type, validate_value
from kedge.channel.routes import EDGE_VERSIONS
from kedge.errors import PermanentError

API_VERSION = "devices.kubeedge.io/v1beta1"
MIN_CYCLE_MS = 10
MAX_CYCLE_MS = 2**63 - 1  # KubeEdge's int64 milliseconds; its samples use up to 1e10
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\Z")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)\Z")
_UNITS_MS = {"ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
JSON = dict[str, Any]


class ManifestError(PermanentError):
    """An invalid manifest: `where` is "file: document N (Kind ns/name)", `field` a path."""

    def __init__(self, where: str, field: str, message: str) -> None:
        super().__init__(f"{where}: {field}: {message}")


@dataclass(frozen=True, slots=True)
class Document:
    source: str
    index: int
    body: JSON

    @property
    def where(self) -> str:
        meta = self.body.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        ns = meta.get("namespace", "default") if isinstance(meta, dict) else "default"
        label = f" ({self.body.get('kind')} {ns}/{name})" if name else ""
        return f"{self.source}: document {self.index}{label}"

    def fail(self, field: str, message: str) -> ManifestError:
        return ManifestError(self.where, field, message)


def _map(doc: Document, value: Any, field: str) -> JSON:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise doc.fail(field, "must be a mapping")
    return value


def _list(doc: Document, value: Any, field: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise doc.fail(field, "must be a list")
    return value


def _str(doc: Document, value: Any, field: str, *, required: bool = False) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise doc.fail(field, "must be a non-empty string" if required else "must be a string")
    return value


def _number(doc: Document, value: Any, field: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise doc.fail(field, f"{value!r} is not a number") from None


def parse_cycle(value: Any) -> int:
    """Milliseconds from an integer (KubeEdge's int64 ms) or a duration string ("500ms",
    "2s"); 0 = default."""
    if value is None or value == 0 or value == "":
        return DEFAULT_CYCLE_MS
    if isinstance(value, bool):
        raise ValueError("must be milliseconds or a duration like '500ms' or '2s'")
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 1e10 written as a float
    if isinstance(value, int):
        ms = value
    elif isinstance(value, str) and value.strip().isdigit():
        ms = int(value)
    elif isinstance(value, str) and (match := _DURATION.match(value.strip())):
        ms = int(float(match.group(1)) * _UNITS_MS[match.group(2)])
    else:
        raise ValueError(f"{value!r} is not milliseconds or a duration like '500ms' or '2s'")
    if ms < MIN_CYCLE_MS:
        raise ValueError(f"{value!r} is shorter than {MIN_CYCLE_MS}ms")
    if ms > MAX_CYCLE_MS:
        raise ValueError(f"{value!r} does not fit KubeEdge's int64 milliseconds")
    return ms


def _metadata(doc: Document) -> tuple[str, str]:
    meta = _map(doc, doc.body.get("metadata"), "metadata")
    name = _str(doc, meta.get("name"), "metadata.name", required=True)
    namespace = _str(doc, meta.get("namespace", "default"), "metadata.namespace") or "default"
    for field, value in (("metadata.name", name), ("metadata.namespace", namespace)):
        if not _NAME.match(value):
            raise doc.fail(field, f"{value!r} is not a valid DNS-1123 name")
    return namespace, name


def _visitors(doc: Document, value: Any, field: str) -> tuple[str, JSON]:
    visitors = _map(doc, value, field)
    protocol = _str(doc, visitors.get("protocolName"), f"{field}.protocolName")
    config = _map(doc, visitors.get("configData"), f"{field}.configData")
    return protocol, config


def _model_property(doc: Document, raw: Any, field: str) -> tuple[PropertySpec, JSON]:
    prop = _map(doc, raw, field)
    name = _str(doc, prop.get("name"), f"{field}.name", required=True)
    if not KEY_PATTERN.match(name):
        raise doc.fail(f"{field}.name", f"{name!r} is not a valid property name")
    raw_type = _str(doc, prop.get("type"), f"{field}.type", required=True)
    try:
        type_ = normalize_type(raw_type)
    except TwinError as exc:
        raise doc.fail(f"{field}.type", exc.reason) from None
    access = _str(doc, prop.get("accessMode", "ReadWrite"), f"{field}.accessMode")
    if access not in ("ReadWrite", "ReadOnly"):
        raise doc.fail(f"{field}.accessMode", f"{access!r} is not ReadWrite or ReadOnly")
    spec = PropertySpec(
        name=name,
        type=type_,
        access_mode=access,
        minimum=_number(doc, prop.get("minimum"), f"{field}.minimum"),
        maximum=_number(doc, prop.get("maximum"), f"{field}.maximum"),
        unit=_str(doc, prop.get("unit"), f"{field}.unit"),
        description=_str(doc, prop.get("description"), f"{field}.description"),
    )
    _, visitor_defaults = _visitors(doc, prop.get("visitors"), f"{field}.visitors")
    return spec, visitor_defaults


@dataclass(frozen=True, slots=True)
class Model:
    namespace: str
    name: str
    protocol: str
    config: JSON
    properties: dict[str, tuple[PropertySpec, JSON]]


def parse_model(doc: Document) -> Model:
    namespace, name = _metadata(doc)
    spec = _map(doc, doc.body.get("spec"), "spec")
    properties: dict[str, tuple[PropertySpec, JSON]] = {}
    for i, raw in enumerate(_list(doc, spec.get("properties"), "spec.properties")):
        prop, visitors = _model_property(doc, raw, f"spec.properties[{i}]")
        if prop.name in properties:
            raise doc.fail(f"spec.properties[{i}].name", f"duplicate property {prop.name!r}")
        properties[prop.name] = (prop, visitors)
    return Model(
        namespace=namespace,
        name=name,
        protocol=_str(doc, spec.get("protocol"), "spec.protocol"),
        config=_map(doc, spec.get("protocolConfigData"), "spec.protocolConfigData"),
        properties=properties,
    )


def _device_property(
    doc: Document, model: Model, protocol: str, raw: Any, field: str, now: int
) -> tuple[JSON, Twin]:
    prop = _map(doc, raw, field)
    name = _str(doc, prop.get("name"), f"{field}.name", required=True)
    if name not in model.properties:
        raise doc.fail(f"{field}.name", f"model {model.name!r} has no property {name!r}")
    spec, visitor_defaults = model.properties[name]
    _, visitor_config = _visitors(doc, prop.get("visitors"), f"{field}.visitors")
    desired = _map(doc, prop.get("desired"), f"{field}.desired")
    value = desired.get("value")
    if value is not None and not isinstance(value, str):
        raise doc.fail(f"{field}.desired.value", "must be a string (quote it in YAML)")
    if value:
        try:
            validate_value(name, value, spec.type)
        except TwinError as exc:
            raise doc.fail(f"{field}.desired.value", exc.reason) from None
    cycles = {}
    for key in ("collectCycle", "reportCycle"):
        try:
            cycles[key] = parse_cycle(prop.get(key))
        except ValueError as exc:
            raise doc.fail(f"{field}.{key}", str(exc)) from None
    report = prop.get("reportToCloud", True)
    if not isinstance(report, bool):
        raise doc.fail(f"{field}.reportToCloud", "must be true or false")
    push = _map(doc, prop.get("pushMethod"), f"{field}.pushMethod")
    merged = _member(spec, protocol, {**visitor_defaults, **visitor_config},
                     collect_cycle_ms=cycles["collectCycle"],
                     report_cycle_ms=cycles["reportCycle"], report_to_cloud=report,
                     push_method=push)  # fmt: skip
    expected = TwinValue(value, now) if value else None
    twin = Twin(
        name=name,
        type=spec.type,
        optional=False,
        expected=expected,
        expected_version=Version(1 if value else 0, 0),
        description=spec.description,
    )
    return merged, twin


def _member(spec: PropertySpec, protocol: str, visitors: JSON, **settings: Any) -> JSON:
    """A property as the membership extension carries it: model facts plus device settings."""
    return PropertyConfig(
        spec.name, spec.type, spec.access_mode, visitors, minimum=spec.minimum,
        maximum=spec.maximum, unit=spec.unit, description=spec.description, protocol=protocol,
        **settings,
    ).to_spec()  # fmt: skip


def _model_only_property(model: Model, protocol: str, name: str) -> tuple[JSON, Twin]:
    spec, visitors = model.properties[name]
    merged = _member(spec, protocol, dict(visitors))
    return merged, Twin(name=name, type=spec.type, optional=False, description=spec.description)


DESIRED = "desired"  # the declared desired values, kept in the stored spec beside the rest


def declared_desired(spec: JSON) -> dict[str, str]:
    """{property: desired value} as the device's declaration gave them."""
    top = spec.get(DESIRED)
    if isinstance(top, dict):
        return {str(k): str(v) for k, v in top.items()}
    # specs stored before the declared values moved out of the properties
    return {
        str(p["name"]): str(p["desired"])
        for p in spec.get("properties", [])
        if isinstance(p, dict) and p.get("desired")
    }


def mapper_spec(spec: JSON) -> JSON:
    """What a mapper is sent of the merged spec: everything but desired values, which reach it
    as deltas, so that a new desired value never looks like a new device."""
    out = {k: v for k, v in spec.items() if k != DESIRED}
    properties = out.get("properties")
    if isinstance(properties, list):
        out["properties"] = [
            {k: v for k, v in p.items() if k != DESIRED} if isinstance(p, dict) else p
            for p in properties
        ]
    return out


def _seen_edge(doc: Document, meta: JSON) -> dict[str, int] | None:
    """The annotation the cloud keeps: {property: edge desired writes it has adopted}."""
    annotations = _map(doc, meta.get("annotations"), "metadata.annotations")
    raw = annotations.get(EDGE_VERSIONS)
    if raw is None:
        return None
    field = f"metadata.annotations[{EDGE_VERSIONS}]"
    try:
        seen = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        seen = None
    if not isinstance(seen, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and v >= 0 for k, v in seen.items()
    ):
        raise doc.fail(field, "must be a JSON object of property names to counts")
    return seen


def _retention(doc: Document, meta: JSON) -> Rule | None:
    raw = _map(doc, meta.get("annotations"), "metadata.annotations").get(RETENTION)
    try:
        return None if raw is None else parse_rule(raw)
    except ValueError as exc:
        raise doc.fail(f"metadata.annotations[{RETENTION}]", str(exc)) from None


def parse_device(doc: Document, models: Mapping[tuple[str, str], Model], now: int) -> Device:
    """A Device document merged with its model; twins carry the manifest's desired values."""
    namespace, name = _metadata(doc)
    meta = _map(doc, doc.body.get("metadata"), "metadata")
    labels = _map(doc, meta.get("labels"), "metadata.labels")
    spec = _map(doc, doc.body.get("spec"), "spec")
    ref = _map(doc, spec.get("deviceModelRef"), "spec.deviceModelRef")
    model_name = _str(doc, ref.get("name"), "spec.deviceModelRef.name", required=True)
    model = models.get((namespace, model_name))
    if model is None:
        raise doc.fail(
            "spec.deviceModelRef.name", f"no DeviceModel {namespace}/{model_name} in the manifests"
        )
    proto = _map(doc, spec.get("protocol"), "spec.protocol")
    protocol = _str(doc, proto.get("protocolName"), "spec.protocol.protocolName") or model.protocol
    if model.protocol and protocol != model.protocol:
        raise doc.fail(
            "spec.protocol.protocolName",
            f"{protocol!r} differs from the model's protocol {model.protocol!r}",
        )
    if not protocol:
        raise doc.fail("spec.protocol.protocolName", "no protocol in the device or its model")
    config = {**model.config, **_map(doc, proto.get("configData"), "spec.protocol.configData")}
    props: dict[str, JSON] = {}
    twins: dict[str, Twin] = {}
    for i, raw in enumerate(_list(doc, spec.get("properties"), "spec.properties")):
        merged, twin = _device_property(doc, model, protocol, raw, f"spec.properties[{i}]", now)
        if twin.name in props:
            raise doc.fail(f"spec.properties[{i}].name", f"duplicate property {twin.name!r}")
        props[twin.name], twins[twin.name] = merged, twin
    for prop_name in model.properties:
        if prop_name not in props:
            props[prop_name], twins[prop_name] = _model_only_property(model, protocol, prop_name)
    merged_spec: JSON = {
        "model": model_name,
        "nodeName": spec.get("nodeName") or "",
        "protocol": {"protocolName": protocol, "configData": config},
        "properties": list(props.values()),
        "methods": _list(doc, spec.get("methods"), "spec.methods"),
        "stateReport": _map(doc, spec.get("stateReport"), "spec.stateReport"),
        DESIRED: {n: t.expected.value for n, t in twins.items() if t.expected is not None},
    }
    rule = _retention(doc, meta)
    if rule is not None:
        merged_spec["history"] = rule
    return Device(
        seen_edge=_seen_edge(doc, meta),
        id=device_id(namespace, name),
        name=name,
        namespace=namespace,
        description=str(labels.get("description", "")),
        protocol=protocol,
        attributes={str(k): str(v) for k, v in labels.items()},
        properties={p: model.properties[p][0] for p in props},
        twins=twins,
        spec=merged_spec,
    )
