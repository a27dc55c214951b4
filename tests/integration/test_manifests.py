"""`--devices`: invalid manifests stop edgecore with file/document/field, touching nothing."""

from __future__ import annotations

from pathlib import Path

from harness.support import SAMPLES, EdgeProcess, Mosquitto, MqttProbe, running

EXTRA_MODEL = """
apiVersion: devices.kubeedge.io/v1beta1
kind: DeviceModel
metadata: {name: spare, namespace: default}
spec: {protocol: modbus, properties: [{name: x, type: INT}]}
"""
BAD_DEVICE = """
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: {name: broken, namespace: default}
spec:
  deviceModelRef: {name: modbus-thermostat}
  nodeName: edge-node-1
  properties:
    - name: setpoint
      desired: {value: "warm"}
"""


def test_invalid_manifest_is_refused_and_stored_twins_untouched(
    tmp_path: Path, broker: Mosquitto, probe: MqttProbe
) -> None:
    samples = sorted(SAMPLES.glob("*.yaml"))
    edge = EdgeProcess(tmp_path / "state", mqtt_url=broker.url, devices=samples)
    with running(edge):
        probe.request(
            "$hw/events/device/default/zigbee-thermostat-1/twin/update",
            {"twin": {"humidity": {"actual": {"value": "42"}}}},
        )
        before = edge.get("/v1/devices").json()
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXTRA_MODEL + "---" + BAD_DEVICE)
    edge.devices = [*samples, bad]
    result = edge.run_to_exit()
    assert result.returncode == 2
    assert (
        f"{bad}: document 2 (Device default/broken): spec.properties[0].desired.value:"
        in result.stderr
    )
    assert "not a 64-bit integer" in result.stderr
    edge.devices = samples
    with running(edge):
        assert edge.get("/v1/devices").json() == before


def test_manifest_changes_membership_and_announces_it(
    tmp_path: Path, broker: Mosquitto, probe: MqttProbe
) -> None:
    samples = sorted(SAMPLES.glob("*.yaml"))
    edge = EdgeProcess(tmp_path / "state", mqtt_url=broker.url, devices=samples)
    with running(edge):
        added = probe.expect("$hw/events/node/edge-node-1/membership/updated")
        assert len(added["added_devices"]) == 6
    edge.devices = [p for p in samples if p.name != "zigbee.yaml"]
    with running(edge):
        update = probe.expect(
            "$hw/events/node/edge-node-1/membership/updated", lambda b: bool(b["removed_devices"])
        )
        assert sorted(d["id"] for d in update["removed_devices"]) == [
            "default/zigbee-coordinator",
            "default/zigbee-light-1",
            "default/zigbee-thermostat-1",
        ]
        assert len(edge.get("/v1/devices").json()["items"]) == 3
