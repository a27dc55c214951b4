"""Our devices as DMI messages, and DMI reports as twin patches. Pure.

A mapper hears a desired value twice in one `Device`, as KubeEdge's edgecore sends it: in
`spec.properties[].desired` and as `status.twins[].observedDesired` (the mapper framework writes
the latter to the device). Reported values are never sent down: a reading is not a new device.
configData values travel as `google.protobuf.Any` wrappers (strings, booleans, integers,
floats; objects and lists as `Struct`/`ListValue`), which the mapper framework unpacks
generically.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from google.protobuf import struct_pb2, wrappers_pb2
from google.protobuf.json_format import ParseDict, ParseError

from devicetwin.memberspec import PropertyConfig
from devicetwin.model import Device, DeviceId, PropertySpec, Twin, device_id
from devicetwin.rules import TwinError, TwinPatch
from kedge.dmi import pb

MAX_NAME = 253
INT32 = range(-(2**31), 2**31)


def pack_config(config: Mapping[str, Any]) -> Any:
    """configData as a CustomizedValue: each value in the narrowest well-known wrapper."""
    value = pb.CustomizedValue()
    for key, raw in config.items():
        wrapped = _wrapper(raw)
        if wrapped is not None:
            value.data[str(key)].Pack(wrapped)
    return value


def _wrapper(raw: Any) -> Any:
    if raw is None:
        return None
    if isinstance(raw, bool):
        return wrappers_pb2.BoolValue(value=raw)
    if isinstance(raw, int):
        return (wrappers_pb2.Int32Value if raw in INT32 else wrappers_pb2.Int64Value)(value=raw)
    if isinstance(raw, float):
        return wrappers_pb2.DoubleValue(value=raw)
    if isinstance(raw, str):
        return wrappers_pb2.StringValue(value=raw)
    if isinstance(raw, Mapping):
        struct = struct_pb2.Struct()
        struct.update({str(k): v for k, v in raw.items()})
        return struct
    if isinstance(raw, list | tuple):
        listed = struct_pb2.ListValue()
        listed.extend(list(raw))
        return listed
    return wrappers_pb2.StringValue(value=str(raw))


def _bound(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return ""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _model_name(device: Device) -> str:
    return str(device.spec.get("model") or device.name)


def model_message(device: Device) -> Any:
    """The device's model as DMI's DeviceModel (types in the CRD's upper-case enum)."""
    properties = [_model_property(p) for p in device.properties.values()]
    return pb.DeviceModel(name=_model_name(device), namespace=device.namespace,
                          spec=pb.DeviceModelSpec(properties=properties))  # fmt: skip


def _model_property(spec: PropertySpec) -> Any:
    return pb.ModelProperty(
        name=spec.name, description=spec.description, type=spec.type.upper(),
        accessMode=spec.access_mode, minimum=_bound(spec.minimum), maximum=_bound(spec.maximum),
        unit=spec.unit,
    )  # fmt: skip


def _desired(twin: Twin | None) -> Any:
    if twin is None or twin.expected is None:
        return None
    return pb.TwinProperty(
        value=twin.expected.value,
        metadata={"type": twin.type, "timestamp": str(twin.expected.timestamp)},
    )


def push_method(raw: Mapping[str, Any]) -> Any:
    """The CRD's pushMethod as DMI's. The CRD spells some keys unlike the proto (`hostName`,
    `requestPath`, `TDEngine`/`TDEngineClientConfig`/`dbName`), as upstream's edgecore maps
    them; None when absent or not that shape (the CRD's schema refuses such devices)."""
    if not raw:
        return None
    out = {k: dict(v) for k, v in raw.items() if k in ("mqtt", "otel") and isinstance(v, Mapping)}
    http = raw.get("http")
    if isinstance(http, Mapping):
        out["http"] = {_HTTP_KEYS.get(k, k): v for k, v in http.items()}
    db = raw.get("dbMethod")
    if isinstance(db, Mapping):
        out["dbMethod"] = _db_method(db)
    message = pb.PushMethod()
    anomaly = raw.get("anomalyDetection")
    if isinstance(anomaly, Mapping):
        message.anomalyDetection.data.MergeFrom(pack_config(anomaly).data)
    try:
        return ParseDict(out, message, ignore_unknown_fields=True)
    except ParseError:
        return None


_HTTP_KEYS = {"hostName": "hostname", "requestPath": "requestpath"}


def _db_method(db: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in db.items() if k in ("influxdb2", "redis", "mysql")}
    tdengine = db.get("TDEngine") or db.get("tdengine")
    if isinstance(tdengine, Mapping):
        config = tdengine.get("TDEngineClientConfig") or tdengine.get("tdEngineClientConfig") or {}
        if isinstance(config, Mapping):
            name = config.get("dbName") or config.get("dbname", "")
            client = {"addr": config.get("addr", ""), "dbname": name}
            out["tdengine"] = {"tdEngineClientConfig": client}
    return out


def _items(raw: object) -> list[Mapping[str, Any]]:
    return [item for item in raw if isinstance(item, Mapping)] if isinstance(raw, list) else []


def device_message(device: Device) -> Any:
    """The device as DMI's Device: spec with each property's visitor and desired value, status
    twins carrying the desired values as `observedDesired`."""
    protocol = device.spec.get("protocol")
    protocol = protocol if isinstance(protocol, Mapping) else {}
    properties, twins = [], []
    for raw in _items(device.spec.get("properties")):
        config = PropertyConfig.from_spec(raw)
        desired = _desired(device.twins.get(config.name))
        properties.append(pb.DeviceProperty(
            name=config.name, desired=desired,
            visitors=pb.VisitorConfig(protocolName=config.protocol or device.protocol,
                                      configData=pack_config(config.visitor)),
            reportCycle=config.report_cycle_ms, collectCycle=config.collect_cycle_ms,
            reportToCloud=config.report_to_cloud, pushMethod=push_method(config.push_method),
        ))  # fmt: skip
        if desired is not None:
            twins.append(pb.Twin(propertyName=config.name, observedDesired=desired))
    methods = [
        pb.DeviceMethod(name=str(m.get("name", "")), description=str(m.get("description", "")),
                        propertyNames=[str(n) for n in m.get("propertyNames") or []])
        for m in _items(device.spec.get("methods"))
    ]  # fmt: skip
    spec = pb.DeviceSpec(
        deviceModelReference=_model_name(device),
        protocol=pb.ProtocolConfig(protocolName=device.protocol,
                                   configData=pack_config(protocol.get("configData") or {})),
        properties=properties, methods=methods,
    )  # fmt: skip
    return pb.Device(name=device.name, namespace=device.namespace, spec=spec,
                     status=pb.DeviceStatus(twins=twins))  # fmt: skip


def target(name: str, namespace: str) -> DeviceId:
    """The device a request names; KubeEdge's older mappers leave the namespace empty."""
    if not name or len(name) > MAX_NAME or len(namespace) > MAX_NAME:
        raise TwinError(400, "deviceName must be 1 to 253 characters (and the namespace at most)")
    return device_id(namespace or "default", name)


def report_patches(device: Device, status: Any) -> dict[str, TwinPatch]:
    """ReportDeviceStatus's twins as an edge update: `reported` is the reading,
    `observedDesired` the set-point the device had. Only the model's properties are reported."""
    patches: dict[str, TwinPatch] = {}
    for twin in status.twins:
        name = twin.propertyName
        if name not in device.properties:
            raise TwinError(404, f"device {device.id} has no property {name!r}")
        if not twin.HasField("reported"):
            raise TwinError(400, f"{name}: no reported value")
        observed = twin.observedDesired.value if twin.HasField("observedDesired") else None
        patches[name] = TwinPatch(actual=twin.reported.value, observed=observed or None)
    if not patches:
        raise TwinError(400, "reportedDevice has no twins")
    return patches
