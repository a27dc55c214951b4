"""What keeps a Device from working shows in `status.conditions` and as Events (kubectl get,
kubectl describe): a missing model, an unknown or silent node, no mapper for the protocol."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.cloud import CloudProcess
from harness.support import SAMPLES, Mosquitto, MqttProbe, wait_for

ORPHAN = """
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: {name: orphan, namespace: default}
spec:
  deviceModelRef: {name: no-such-model}
  nodeName: ghost-node
  protocol: {protocolName: modbus}
"""


def _conditions(cloud: CloudProcess, name: str) -> dict[str, tuple[str, str]]:
    device = cloud.device(name)
    found = device.get("status", {}).get("conditions", [])
    return {c["type"]: (c["status"], c["reason"]) for c in found}


def _events(cloud: CloudProcess, name: str) -> list[dict[str, Any]]:
    got = cloud.apiserver.kubectl(
        "get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "json"
    )
    return list(json.loads(got.stdout)["items"])


def test_problems_show_as_conditions_and_events_and_clear_when_fixed(
    tmp_path: Path, cloud: CloudProcess, broker: Mosquitto, probe: MqttProbe
) -> None:
    cloud.apiserver.kubectl("apply", "-f", "-", stdin=ORPHAN)
    wait_for(lambda: _conditions(cloud, "orphan").get("ModelFound") == ("False", "ModelNotFound"),
             timeout=20, what="ModelNotFound")  # fmt: skip
    assert _conditions(cloud, "orphan")["NodeReady"] == ("False", "NodeUnknown")
    wait_for(lambda: {e["reason"] for e in _events(cloud, "orphan")}
             >= {"ModelNotFound", "NodeUnknown"}, timeout=20, what="Warning events")  # fmt: skip
    described = cloud.apiserver.kubectl("describe", "device", "orphan").stdout
    assert "ModelNotFound" in described and "no-such-model" in described

    edge = cloud.edge(tmp_path / "edge", broker.url)
    edge.extra += ["--heartbeat", "0.5"]
    edge.start()
    try:
        cloud.apiserver.kubectl("apply", "-f", str(SAMPLES / "modbus.yaml"))
        wait_for(lambda: _conditions(cloud, "thermostat-1").get("MapperAvailable")
                 == ("False", "NoMapper"), timeout=30, what="NoMapper on a ready node")  # fmt: skip
        assert _conditions(cloud, "thermostat-1")["NodeReady"] == ("True", "NodeReady")
        # what a Modbus mapper does when it starts: ask the edge for its devices
        topic = "$hw/events/node/edge-node-1/membership/get"
        probe.request(topic, {"protocol": "modbus"}, f"{topic}/result/modbus")
        wait_for(lambda: _conditions(cloud, "thermostat-1").get("MapperAvailable")
                 == ("True", "MapperRegistered"), timeout=30, what="the mapper seen")  # fmt: skip
        assert [e["reason"] for e in _events(cloud, "thermostat-1")] == ["NoMapper"]
    finally:
        edge.stop()
