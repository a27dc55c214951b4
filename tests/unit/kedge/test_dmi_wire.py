"""Our DMI .proto against upstream's field numbers, byte for byte: the expected bytes below are
written by hand from kubeedge/api apis/dmi/v1beta1/api.proto (tag = field number << 3 | wire
type), not produced by our own encoder."""

from __future__ import annotations

from kedge.dmi import pb, services


def test_mapper_register_request_bytes() -> None:
    request = pb.MapperRegisterRequest(
        withData=True,
        mapper=pb.MapperInfo(name="m", version="v1", api_version="v1.0", protocol="modbus",
                             address=b"/tmp/m.sock", state="ok"),
    )  # fmt: skip
    mapper = (
        b"\x0a\x01m"  # name = 1
        b"\x12\x02v1"  # version = 2
        b"\x1a\x04v1.0"  # api_version = 3
        b"\x22\x06modbus"  # protocol = 4
        b"\x2a\x0b/tmp/m.sock"  # address = 5 (bytes)
        b"\x32\x02ok"  # state = 6
    )
    expected = b"\x08\x01" + b"\x12" + bytes([len(mapper)]) + mapper  # withData = 1, mapper = 2
    assert request.SerializeToString() == expected
    assert pb.MapperRegisterRequest.FromString(expected) == request


def test_report_device_status_request_bytes() -> None:
    request = pb.ReportDeviceStatusRequest(
        deviceName="d1",
        deviceNamespace="default",
        reportedDevice=pb.DeviceStatus(
            twins=[pb.Twin(propertyName="t", observedDesired=pb.TwinProperty(value="5"),
                           reported=pb.TwinProperty(value="6", metadata={"type": "int"}))],
            reportToCloud=True, reportCycle=1000,
        ),
    )  # fmt: skip
    entry = b"\x0a\x04type\x12\x03int"  # map entry: key = 1, value = 2
    reported = b"\x0a\x016" + b"\x12" + bytes([len(entry)]) + entry  # value = 1, metadata = 2
    twin = (
        b"\x0a\x01t"  # propertyName = 1
        b"\x12\x03\x0a\x015"  # observedDesired = 2
        + b"\x1a" + bytes([len(reported)]) + reported  # reported = 3
    )  # fmt: skip
    status = (
        b"\x0a" + bytes([len(twin)]) + twin  # twins = 1
        + b"\x10\x01"  # reportToCloud = 2
        + b"\x18\xe8\x07"  # reportCycle = 3 (1000 as a varint)
    )  # fmt: skip
    expected = (
        b"\x0a\x02d1"  # deviceName = 1
        + b"\x12" + bytes([len(status)]) + status  # reportedDevice = 2
        + b"\x1a\x07default"  # deviceNamespace = 3
    )  # fmt: skip
    assert request.SerializeToString() == expected
    assert pb.ReportDeviceStatusRequest.FromString(expected) == request


def test_service_and_method_names_are_upstreams() -> None:
    manager = pb.DESCRIPTOR.services_by_name["DeviceManagerService"]
    mapper = pb.DESCRIPTOR.services_by_name["DeviceMapperService"]
    assert pb.DESCRIPTOR.package == "v1beta1"
    assert manager.full_name == "v1beta1.DeviceManagerService"
    assert [m.name for m in manager.methods] == [
        "MapperRegister",
        "ReportDeviceStatus",
        "ReportDeviceStates",
    ]
    assert [m.name for m in mapper.methods] == [
        "RegisterDevice", "RemoveDevice", "UpdateDevice", "CreateDeviceModel",
        "RemoveDeviceModel", "UpdateDeviceModel", "GetDevice"]  # fmt: skip
    assert hasattr(services, "add_DeviceManagerServiceServicer_to_server")


def test_device_property_field_numbers() -> None:
    fields = {f.name: f.number for f in pb.DeviceProperty.DESCRIPTOR.fields}
    assert fields == {"name": 1, "desired": 2, "visitors": 3, "reportCycle": 4,
                      "collectCycle": 5, "reportToCloud": 6, "pushMethod": 7}  # fmt: skip
    push = {f.name: f.number for f in pb.PushMethod.DESCRIPTOR.fields}
    assert push == {"http": 1, "mqtt": 2, "dbMethod": 3, "otel": 4, "anomalyDetection": 5}
    db = {f.name: f.number for f in pb.DBMethod.DESCRIPTOR.fields}
    assert db == {"influxdb2": 1, "redis": 2, "tdengine": 3, "mysql": 4}
