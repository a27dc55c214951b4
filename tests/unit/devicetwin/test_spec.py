"""Manifest loading: samples load, model defaults merge, bad manifests name file/doc/field."""

from __future__ import annotations

from pathlib import Path

import pytest

from devicetwin.catalog import Catalog
from devicetwin.manifests import read_documents
from devicetwin.model import Device, TwinValue, Version
from devicetwin.spec import ManifestError, parse_cycle

SAMPLES = Path(__file__).parents[3] / "crds" / "samples"
NOW = 1_700_000_000_000

MODEL = """
apiVersion: devices.kubeedge.io/v1beta1
kind: DeviceModel
metadata: {name: m, namespace: ns1}
spec:
  protocol: modbus
  protocolConfigData: {port: 502, timeout: 5}
  properties:
    - {name: level, type: INT, accessMode: ReadWrite, minimum: "0", maximum: "100",
       visitors: {protocolName: modbus, configData: {register: HoldingRegister, limit: 1}}}
    - {name: label, type: STRING, accessMode: ReadOnly}
"""
DEVICE = """
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: {name: d1, namespace: ns1, labels: {room: "7"}}
spec:
  deviceModelRef: {name: m}
  nodeName: node-a
  protocol: {protocolName: modbus, configData: {ip: 10.0.0.2, port: 1502}}
  properties:
    - name: level
      collectCycle: "500ms"
      desired: {value: "42"}
      visitors: {protocolName: modbus, configData: {offset: 3}}
"""


def load_manifests(paths: list[Path], node: str, now: int) -> list[Device]:
    return Catalog(node, [doc for path in paths for doc in read_documents(path)], now).bound()


def write(tmp_path: Path, text: str, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_samples_when_loaded_cover_every_protocol() -> None:
    devices = load_manifests(sorted(SAMPLES.glob("*.yaml")), "edge-node-1", NOW)
    assert {d.protocol for d in devices} == {"bluetooth", "modbus", "opcua", "zigbee"}


def test_device_when_merged_with_model_device_wins_key_by_key(tmp_path: Path) -> None:
    [device] = load_manifests([write(tmp_path, MODEL + "---" + DEVICE)], "node-a", NOW)
    assert device.id == "ns1/d1" and device.attributes == {"room": "7"}
    assert device.spec["protocol"] == {
        "protocolName": "modbus",
        "configData": {"port": 1502, "timeout": 5, "ip": "10.0.0.2"},
    }
    level = next(p for p in device.spec["properties"] if p["name"] == "level")
    assert level["visitors"]["configData"] == {
        "register": "HoldingRegister",
        "limit": 1,
        "offset": 3,
    }
    assert level["collectCycle"] == 500 and level["reportCycle"] == 1000
    assert device.twins["level"].expected == TwinValue("42", NOW)
    assert device.twins["level"].expected_version == Version(1, 0)
    assert device.twins["label"].expected is None and not device.twins["label"].optional
    assert device.properties["level"].maximum == 100


def test_device_when_bound_to_other_node_is_skipped(tmp_path: Path) -> None:
    assert load_manifests([write(tmp_path, MODEL + "---" + DEVICE)], "node-b", NOW) == []


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        (
            ('desired: {value: "42"}', 'desired: {value: "abc"}'),
            "spec.properties[0].desired.value",
            "not a 64-bit integer",
        ),
        (
            ('desired: {value: "42"}', "desired: {value: 42}"),
            "spec.properties[0].desired.value",
            "quote it",
        ),
        (
            ("name: level\n      collectCycle", "name: nope\n      collectCycle"),
            "spec.properties[0].name",
            "has no property",
        ),
        (
            ("deviceModelRef: {name: m}", "deviceModelRef: {name: other}"),
            "spec.deviceModelRef.name",
            "no DeviceModel ns1/other",
        ),
        (
            ('collectCycle: "500ms"', "collectCycle: 5"),
            "spec.properties[0].collectCycle",
            "shorter than",
        ),
        (
            ('collectCycle: "500ms"', "collectCycle: 9223372036854775808"),
            "spec.properties[0].collectCycle",
            "does not fit KubeEdge's int64",
        ),
        (
            ('collectCycle: "500ms"', "collectCycle: soon"),
            "spec.properties[0].collectCycle",
            "not milliseconds",
        ),
        (
            ("protocolName: modbus, configData: {ip", "protocolName: opcua, configData: {ip"),
            "spec.protocol.protocolName",
            "differs from the model",
        ),
        (("name: d1,", "name: D_1,"), "metadata.name", "DNS-1123"),
        (("kind: Device\n", "kind: Gadget\n"), "kind", "not DeviceModel or Device"),
    ],
)
def test_device_when_invalid_names_file_document_and_field(
    tmp_path: Path, change: tuple[str, str], field: str, fragment: str
) -> None:
    assert change[0] in DEVICE
    path = write(tmp_path, MODEL + "---" + DEVICE.replace(*change))
    with pytest.raises(ManifestError) as err:
        load_manifests([path], "node-a", NOW)
    message = str(err.value)
    assert message.startswith(f"{path}: document 2")
    assert f": {field}: " in message and fragment in message


@pytest.mark.parametrize(
    ("model_change", "field"),
    [
        (("type: INT", "type: VIDEO"), "spec.properties[0].type"),
        (("accessMode: ReadWrite", "accessMode: WriteOnly"), "spec.properties[0].accessMode"),
        (('minimum: "0"', "minimum: low"), "spec.properties[0].minimum"),
        (("name: label", "name: level"), "spec.properties[1].name"),
    ],
)
def test_model_when_invalid_names_field(
    tmp_path: Path, model_change: tuple[str, str], field: str
) -> None:
    path = write(tmp_path, MODEL.replace(*model_change))
    with pytest.raises(ManifestError) as err:
        load_manifests([path], "node-a", NOW)
    assert f"document 1 (DeviceModel ns1/m): {field}: " in str(err.value)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a: [unclosed", "invalid YAML"),
        ("- just\n- a list", "must be a mapping"),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}", "apiVersion: must be"),
    ],
)
def test_file_when_not_a_manifest_is_refused(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(ManifestError, match=fragment):
        load_manifests([write(tmp_path, text)], "node-a", NOW)


def test_file_when_missing_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="cannot be read"):
        load_manifests([tmp_path / "absent.yaml"], "node-a", NOW)


@pytest.mark.parametrize(
    ("raw", "ms"),
    [
        (None, 1000),
        (0, 1000),
        (250, 250),
        ("2s", 2000),
        ("1.5s", 1500),
        ("100ms", 100),
        ("1m", 60000),
    ],
)
def test_parse_cycle_when_valid(raw: object, ms: int) -> None:
    assert parse_cycle(raw) == ms


def test_device_when_annotated_with_retention_carries_it_or_names_the_field(
    tmp_path: Path,
) -> None:
    annotated = DEVICE.replace(
        'labels: {room: "7"}',
        """labels: {room: "7"}, annotations: {history.kedge.io/retention: '{"maxAge": "2h"}'}""",
    )
    (device,) = load_manifests([write(tmp_path, MODEL + "---" + annotated)], "node-a", NOW)
    assert device.spec["history"] == {"maxAgeMs": 7_200_000, "properties": {}}
    bad = annotated.replace('"2h"', '"later"')
    with pytest.raises(ManifestError) as err:
        load_manifests([write(tmp_path, MODEL + "---" + bad)], "node-a", NOW)
    assert "metadata.annotations[history.kedge.io/retention]: retention.maxAge" in str(err.value)
