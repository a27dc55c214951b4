"""Our devices as DMI messages and DMI reports as twin patches."""

from __future__ import annotations

import pytest

from devicetwin.model import Device, DeviceId, PropertySpec, Twin, TwinValue
from devicetwin.rules import TwinError
from edgecore.dmi.convert import device_message, model_message, pack_config, report_patches
from kedge.dmi import pb

PUSH = {
    "mqtt": {"address": "tcp://127.0.0.1:1883", "topic": "t", "qos": 1, "retained": True},
    "http": {"hostName": "127.0.0.1", "port": 8080, "requestPath": "/in", "timeout": 500},
    "dbMethod": {
        "redis": {"redisClientConfig": {"addr": "127.0.0.1:6379", "db": 2}},
        "TDEngine": {"TDEngineClientConfig": {"addr": "127.0.0.1:6041", "dbName": "db"}},
    },
    "anomalyDetection": {"window": 10},
}


def _device() -> Device:
    spec = {
        "model": "m1",
        "protocol": {"protocolName": "virtual", "configData": {"port": 502, "big": 2**40}},
        "properties": [
            {
                "name": "t",
                "type": "float",
                "visitors": {"protocolName": "virtual", "configData": {"register": 1}},
                "collectCycle": 500,
                "reportCycle": 2000,
                "pushMethod": PUSH,
            },
        ],
        "methods": [{"name": "reset", "description": "back to defaults", "propertyNames": ["t"]}],
    }
    twin = Twin("t", "float", optional=False, expected=TwinValue("3.5", 7))
    return Device(
        DeviceId("ns/d1"),
        "d1",
        "ns",
        protocol="virtual",
        spec=spec,
        properties={"t": PropertySpec("t", "float", "ReadWrite", 0, 10.5, "C")},
        twins={"t": twin},
    )


def test_device_message_carries_spec_desired_and_push_method() -> None:
    message = device_message(_device())
    assert (message.name, message.namespace, message.spec.deviceModelReference) == (
        "d1",
        "ns",
        "m1",
    )
    prop = message.spec.properties[0]
    assert (prop.collectCycle, prop.reportCycle, prop.desired.value) == (500, 2000, "3.5")
    assert prop.desired.metadata == {"type": "float", "timestamp": "7"}
    assert prop.pushMethod.mqtt.topic == "t" and prop.pushMethod.mqtt.retained
    assert prop.pushMethod.dbMethod.redis.redisClientConfig.db == 2
    assert (prop.pushMethod.http.hostname, prop.pushMethod.http.requestpath) == ("127.0.0.1", "/in")
    assert prop.pushMethod.dbMethod.tdengine.tdEngineClientConfig.dbname == "db"
    assert prop.pushMethod.anomalyDetection.data["window"].type_url.endswith("Int32Value")
    assert message.status.twins[0].observedDesired.value == "3.5"
    assert message.spec.methods[0].propertyNames == ["t"]
    big = message.spec.protocol.configData.data["big"]
    assert big.type_url.endswith("Int64Value")


def test_model_message_uses_the_crd_type_names() -> None:
    model = model_message(_device())
    prop = model.spec.properties[0]
    assert (prop.type, prop.minimum, prop.maximum, prop.unit) == ("FLOAT", "0", "10.5", "C")


def test_pack_config_skips_nulls() -> None:
    assert set(pack_config({"a": None, "b": [1, "x"]}).data) == {"b"}


def test_report_patches() -> None:
    device = _device()
    status = pb.DeviceStatus(
        twins=[
            pb.Twin(
                propertyName="t",
                reported=pb.TwinProperty(value="4"),
                observedDesired=pb.TwinProperty(value="3.5"),
            )
        ]
    )
    patch = report_patches(device, status)["t"]
    assert (patch.actual, patch.observed) == ("4", "3.5")
    with pytest.raises(TwinError) as unknown:
        report_patches(device, pb.DeviceStatus(twins=[pb.Twin(propertyName="x")]))
    assert unknown.value.code == 404
    with pytest.raises(TwinError):
        report_patches(device, pb.DeviceStatus(twins=[pb.Twin(propertyName="t")]))
