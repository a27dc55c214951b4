"""KubeEdge v1.23's CRDs (upstream-shaped copies) applied over kedge's on the embedded API
server: served as Kubernetes serves them (v1beta1 preferred over v1alpha2, each group's
APIGroup document), kubectl get/label/patch right, and a restart keeps them."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from harness.apiserver import ApiServerProcess
from harness.support import SAMPLES

UPSTREAM = Path(__file__).parent / "upstream" / "crds.yaml"
GROUP = "devices.kubeedge.io"


def _crd(apiserver: ApiServerProcess, name: str) -> dict[str, object]:
    got = apiserver.kubectl("get", "crd", f"{name}.{GROUP}", "-o", "json")
    return dict(json.loads(got.stdout))


def test_upstream_crds_are_served_as_kubernetes_would_and_kept(tmp_path: Path) -> None:
    apiserver = ApiServerProcess(tmp_path / "apiserver").start()
    try:
        apiserver.kubectl("apply", "-f", str(UPSTREAM))
        with apiserver.http() as http:
            group = http.get(f"/apis/{GROUP}").json()
            listed = next(g for g in http.get("/apis").json()["groups"] if g["name"] == GROUP)
            assert http.get("/apis/no.such.group").status_code == 404
            assert http.get("/apis/apps").json()["preferredVersion"]["version"] == "v1"
        assert group["kind"] == "APIGroup"
        assert group["preferredVersion"] == {"groupVersion": f"{GROUP}/v1beta1",
                                             "version": "v1beta1"}  # fmt: skip
        assert [v["version"] for v in group["versions"]] == ["v1beta1", "v1alpha2"]
        assert listed["preferredVersion"]["version"] == "v1beta1"

        apiserver.kubectl("apply", "-f", str(SAMPLES / "modbus.yaml"))
        apiserver.kubectl("label", "device", "thermostat-1", "room=7")
        apiserver.kubectl("patch", "device", "thermostat-1", "--type", "merge",
                          "-p", '{"spec": {"nodeName": "edge-node-2"}}')  # fmt: skip
        shown = yaml.safe_load(
            apiserver.kubectl("get", "device", "thermostat-1", "-o", "yaml").stdout
        )
        assert shown["apiVersion"] == f"{GROUP}/v1beta1"
        assert shown["metadata"]["labels"]["room"] == "7"
        assert shown["spec"]["nodeName"] == "edge-node-2"
        old = json.loads(apiserver.kubectl(
            "get", f"devices.v1alpha2.{GROUP}", "thermostat-1", "-o", "json").stdout)  # fmt: skip
        assert old["apiVersion"] == f"{GROUP}/v1alpha2"
        assert "status" not in _crd(apiserver, "devices")["spec"]["versions"][1].get(  # type: ignore[index]
            "subresources", {}
        )
        assert apiserver.kubectl("get", "devicestatuses").returncode == 0
    finally:
        apiserver.stop()
    restarted = ApiServerProcess(tmp_path / "apiserver", port=apiserver.port).start()
    try:
        device = _crd(restarted, "devices")
        # kubectl apply kept kedge's annotation, but what was applied did not carry it: theirs
        versions = [v["name"] for v in device["spec"]["versions"]]  # type: ignore[index]
        assert versions == ["v1alpha2", "v1beta1"]
        assert not any("subresources" in v for v in device["spec"]["versions"])  # type: ignore[index]
        with restarted.http() as http:
            assert http.get(f"/apis/{GROUP}").json()["preferredVersion"]["version"] == "v1beta1"
        assert restarted.kubectl("get", "device", "thermostat-1", "-o", "name").stdout.strip() == (
            "device.devices.kubeedge.io/thermostat-1"
        )
    finally:
        restarted.stop()


def test_kedge_crds_are_installed_when_absent_and_upgraded_only_when_older(tmp_path: Path) -> None:
    apiserver = ApiServerProcess(tmp_path / "apiserver").start()
    try:
        crd = _crd(apiserver, "devicestatuses")
        assert crd["metadata"]["annotations"]["kedge.io/crd-revision"] == "1"  # type: ignore[index]
        apiserver.kubectl("annotate", "crd", f"devicestatuses.{GROUP}", "--overwrite",
                          "kedge.io/crd-revision=0")  # fmt: skip
        apiserver.kubectl("delete", "crd", f"devicemodels.{GROUP}")
    finally:
        apiserver.stop()
    restarted = ApiServerProcess(tmp_path / "apiserver", port=apiserver.port).start()
    try:
        upgraded = _crd(restarted, "devicestatuses")
        assert upgraded["metadata"]["annotations"]["kedge.io/crd-revision"] == "1"  # type: ignore[index]
        assert _crd(restarted, "devicemodels")  # absent: installed again
    finally:
        restarted.stop()
