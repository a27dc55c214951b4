"""A device's history asked through the cloud (API server -> cloudcore -> the device's node over
its channel), with the real kubectl: the points stay at the edge until asked; an offline node
answers at once with a clear error."""

from __future__ import annotations

import json
import time
from pathlib import Path

from harness.cloud import CloudProcess
from harness.support import SAMPLES, Mosquitto, MqttProbe, wait_for

RAW = "/apis/devices.kubeedge.io/v1beta1/namespaces/default/devices/thermostat-1/history"
T = "$hw/events/device/default/thermostat-1"


def test_history_through_the_cloud_and_an_offline_node(
    tmp_path: Path, cloud: CloudProcess, broker: Mosquitto
) -> None:
    edge = cloud.edge(tmp_path / "edge", broker.url)
    edge.extra += ["--heartbeat", "0.5"]
    edge.start()
    probe = MqttProbe(broker.port)
    probe.subscribe("$hw/events/#")
    try:
        cloud.apiserver.kubectl("apply", "-f", str(SAMPLES / "modbus.yaml"))
        wait_for(lambda: edge.get("/v1/devices/default/thermostat-1").status_code == 200,
                 timeout=30, what="the device on the edge")  # fmt: skip
        for value in ("20", "21.5", "23"):
            probe.request(f"{T}/twin/update",
                          {"twin": {"temperature": {"actual": {"value": value}}}})  # fmt: skip
        answer = json.loads(cloud.apiserver.kubectl(
            "get", "--raw", f"{RAW}?property=temperature").stdout)  # fmt: skip
        assert [p["v"] for p in answer["points"]] == ["20", "21.5", "23"]
        stepped = json.loads(cloud.apiserver.kubectl(
            "get", "--raw", f"{RAW}?property=temperature&step=1d").stdout)  # fmt: skip
        assert sum(p["count"] for p in stepped["points"]) == 3
        bad = cloud.apiserver.kubectl("get", "--raw", f"{RAW}?property=temperature&step=x",
                                      check=False)  # fmt: skip
        assert bad.returncode != 0 and "step" in bad.stderr
        missing = cloud.apiserver.kubectl("get", "--raw", f"{RAW}?property=nothing", check=False)
        assert missing.returncode != 0 and "NotFound" in missing.stderr
    finally:
        probe.close()
        edge.stop()
    started = time.monotonic()
    offline = wait_for(lambda: (r := cloud.apiserver.kubectl(
        "get", "--raw", f"{RAW}?property=temperature", check=False)).returncode and
        "not connected" in r.stderr and r, timeout=30, what="the offline answer")  # fmt: skip
    assert "history stays on the node" in offline.stderr
    assert time.monotonic() - started < 30
