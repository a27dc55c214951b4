"""A DMI mapper under a cloud with KubeEdge v1.23's CRDs (upstream-shaped copies): reports land in
the Device's DeviceStatus, or in Device.status where the cluster serves no DeviceStatus (merge-
patched: upstream's Device has no status subresource); a kubectl patch of desired reaches the
mapper as UpdateDevice; a Device deleted in the cloud reaches it as RemoveDevice."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from harness.apiserver import ApiServerProcess
from harness.cloud import CloudProcess
from harness.dmi_mapper import DmiMapperProcess
from harness.support import Mosquitto, wait_for
from kedge.dmi import pb, services
from tests.integration.conftest import DMI_DEVICES
from tests.integration.test_upstream_crds import UPSTREAM


@pytest.fixture
def sockets() -> Iterator[Path]:
    made = Path(tempfile.mkdtemp(prefix="kdmc-", dir="/tmp"))
    yield made
    shutil.rmtree(made, ignore_errors=True)


def _twin(status: dict[str, Any], prop: str) -> str | None:
    for twin in status.get("twins") or []:
        if twin.get("propertyName") == prop:
            return str((twin.get("reported") or {}).get("value"))
    return None


def _desired_update(mapper: DmiMapperProcess, value: str) -> bool:
    for update in mapper.calls("UpdateDevice"):
        for twin in update["device"].get("status", {}).get("twins", []):
            if twin["propertyName"] == "setpoint" and twin["observedDesired"]["value"] == value:
                return True
    return False


@pytest.mark.parametrize("served", [True, False], ids=["devicestatus", "device-status-field"])
def test_dmi_mapper_under_upstream_crds(
    served: bool, tmp_path: Path, sockets: Path, broker: Mosquitto
) -> None:
    apiserver = ApiServerProcess(tmp_path / "apiserver").start()
    cloud = CloudProcess(apiserver, tmp_path / "cloudcore")
    edge = None
    mapper = None
    try:
        apiserver.kubectl("apply", "-f", str(UPSTREAM))
        if not served:
            apiserver.kubectl("delete", "crd", "devicestatuses.devices.kubeedge.io")
        apiserver.kubectl("apply", "-f", str(DMI_DEVICES))
        cloud.start()
        edge = cloud.edge(tmp_path / "edge", broker.url)
        edge.extra += ["--dmi-socket", str(sockets / "dmi.sock")]
        edge.start()
        wait_for(lambda: edge.get("/v1/devices/default/thermo-1").status_code == 200, timeout=30,
                 what="the device delivered to the edge")  # fmt: skip
        mapper = DmiMapperProcess(sockets / "dmi.sock", sockets / "m.sock", "virtual",
                                  tmp_path / "mapper.jsonl", with_data=True).start()  # fmt: skip
        with grpc.insecure_channel(f"unix:{sockets / 'dmi.sock'}") as channel:
            stub = services.DeviceManagerServiceStub(channel)
            twin = pb.Twin(propertyName="temperature", reported=pb.TwinProperty(value="21.5"))
            stub.ReportDeviceStatus(pb.ReportDeviceStatusRequest(
                deviceName="thermo-1", deviceNamespace="default",
                reportedDevice=pb.DeviceStatus(twins=[twin])), timeout=5)  # fmt: skip
            online = pb.ReportDeviceStatesRequest(deviceName="thermo-1", state="online")
            stub.ReportDeviceStates(online, timeout=5)

        def reported() -> dict[str, Any]:
            if served:
                return cloud.reported("thermo-1")
            return dict(cloud.device("thermo-1").get("status") or {})

        wait_for(lambda: _twin(reported(), "temperature") == "21.5"
                 and reported().get("state") == "online", timeout=30,
                 what="the report in the cloud")  # fmt: skip
        if served:
            assert "twins" not in (cloud.device("thermo-1").get("status") or {})
        else:
            assert apiserver.kubectl("get", "devicestatuses", check=False).returncode != 0

        properties = cloud.device("thermo-1")["spec"]["properties"]
        for prop in properties:
            if prop["name"] == "setpoint":
                prop["desired"] = {"value": "33"}
        apiserver.kubectl("patch", "device", "thermo-1", "--type", "merge",
                          "-p", json.dumps({"spec": {"properties": properties}}))  # fmt: skip
        wait_for(lambda: _desired_update(mapper, "33"), timeout=30, what="UpdateDevice with 33")

        apiserver.kubectl("delete", "device", "thermo-1")
        wait_for(lambda: [r for r in mapper.calls("RemoveDevice") if r["deviceName"] == "thermo-1"],
                 timeout=30, what="RemoveDevice")  # fmt: skip
        if served:
            wait_for(lambda: cloud.get("devicestatus", "thermo-1") is None, timeout=30,
                     what="the DeviceStatus deleted with its Device")  # fmt: skip
    finally:
        if mapper is not None:
            mapper.stop()
        if edge is not None:
            edge.stop()
        cloud.stop()
        apiserver.stop()
