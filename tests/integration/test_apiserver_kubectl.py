"""The real kubectl against `kedge apiserver` (HTTPS, bearer token, generated kubeconfig)."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from pathlib import Path

import pytest
import yaml

from harness.apiserver import ApiServerProcess, kubectl_binary
from harness.support import SAMPLES


@pytest.fixture
def ns(apiserver: ApiServerProcess, request: pytest.FixtureRequest) -> str:
    name = request.node.name.replace("_", "-")[:50].strip("-").lower()
    apiserver.kubectl("apply", "-f", "-", stdin=json.dumps(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}))  # fmt: skip
    return name


def _configmap(apiserver: ApiServerProcess, ns: str, name: str, data: dict[str, str]) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns},
          "data": data}  # fmt: skip
    apiserver.kubectl("apply", "-f", "-", stdin=json.dumps(cm))


def _sample(name: str, namespace: str, tmp: Path) -> Path:
    """A sample manifest moved into `namespace`."""
    docs = list(yaml.safe_load_all((SAMPLES / name).read_text()))
    for doc in docs:
        doc["metadata"]["namespace"] = namespace
    path = tmp / f"{namespace}-{name}"
    path.write_text(yaml.safe_dump_all(docs))
    return path


def test_apply_and_get_in_every_format(
    apiserver: ApiServerProcess, ns: str, tmp_path: Path
) -> None:
    applied = apiserver.kubectl("apply", "-n", ns, "-f", str(_sample("modbus.yaml", ns, tmp_path)))
    assert "device.devices.kubeedge.io/thermostat-1 created" in applied.stdout
    table = apiserver.kubectl("get", "devices", "-n", ns).stdout.splitlines()
    assert table[0].split() == ["NAME", "NODE", "MODEL", "AGE"]
    assert table[1].split()[:3] == ["thermostat-1", "edge-node-1", "modbus-thermostat"]
    wide = apiserver.kubectl("get", "dev", "-n", ns, "-o", "wide").stdout
    assert "thermostat-1" in wide
    as_yaml = yaml.safe_load(
        apiserver.kubectl("get", "device", "thermostat-1", "-n", ns, "-o", "yaml").stdout
    )
    assert as_yaml["spec"]["protocol"]["protocolName"] == "modbus"
    as_json = json.loads(apiserver.kubectl("get", "devices", "-n", ns, "-o", "json").stdout)
    assert [i["metadata"]["name"] for i in as_json["items"]] == ["thermostat-1"]
    again = apiserver.kubectl("apply", "-n", ns, "-f", str(_sample("modbus.yaml", ns, tmp_path)))
    assert "unchanged" in again.stdout
    models = apiserver.kubectl("get", "devicemodels", "-n", ns).stdout
    assert "modbus-thermostat" in models and "PROTOCOL" in models


def test_describe_label_annotate(apiserver: ApiServerProcess, ns: str, tmp_path: Path) -> None:
    apiserver.kubectl("apply", "-n", ns, "-f", str(_sample("opcua.yaml", ns, tmp_path)))
    apiserver.kubectl("label", "device", "thermostat-opcua-1", "-n", ns, "room=7")
    apiserver.kubectl("annotate", "device", "thermostat-opcua-1", "-n", ns, "owner=ops")
    described = apiserver.kubectl("describe", "device", "thermostat-opcua-1", "-n", ns).stdout
    assert "room=7" in described and "owner: ops" in described.replace("=", ": ")
    selected = apiserver.kubectl("get", "devices", "-n", ns, "-l", "room in (7,8)", "-o", "name")
    assert selected.stdout.strip() == "device.devices.kubeedge.io/thermostat-opcua-1"
    none = apiserver.kubectl("get", "devices", "-n", ns, "-l", "room=9", "-o", "name")
    assert none.stdout.strip() == ""


def test_patch_types_and_server_side_apply(
    apiserver: ApiServerProcess, ns: str, tmp_path: Path
) -> None:
    apiserver.kubectl("apply", "-n", ns, "-f", str(_sample("modbus.yaml", ns, tmp_path)))
    dev = ["device", "thermostat-1", "-n", ns]
    apiserver.kubectl("patch", *dev, "--type", "merge", "-p", '{"spec":{"nodeName":"n2"}}')
    apiserver.kubectl("patch", *dev, "--type", "json", "-p",
                   '[{"op":"replace","path":"/spec/nodeName","value":"n3"}]')  # fmt: skip
    refused = apiserver.kubectl("patch", *dev, "-p", '{"spec":{"nodeName":"n4"}}', check=False)
    assert refused.returncode != 0 and "not supported" in refused.stderr  # SMP on a CR: 415
    got = json.loads(apiserver.kubectl("get", *dev, "-o", "json").stdout)
    assert got["spec"]["nodeName"] == "n3" and got["metadata"]["generation"] == 3
    apiserver.kubectl("patch", *dev, "--subresource", "status", "--type", "merge", "-p",
                   '{"status":{"state":"online"}}')  # fmt: skip
    assert "online" in apiserver.kubectl("get", *dev, "-o", "jsonpath={.status.state}").stdout
    _configmap(apiserver, ns, "cfg", {"a": "1"})
    apiserver.kubectl("patch", "configmap", "cfg", "-n", ns, "-p", '{"data":{"b":"2"}}')
    data = json.loads(apiserver.kubectl("get", "cm", "cfg", "-n", ns, "-o", "json").stdout)["data"]
    assert data == {"a": "1", "b": "2"}
    applied = apiserver.kubectl("apply", "--server-side", "-n", ns, "-f",
                             str(_sample("bluetooth.yaml", ns, tmp_path)))  # fmt: skip
    assert "serverside-applied" in applied.stdout
    ble = json.loads(apiserver.kubectl("get", "device", "ble-thermostat-1", "-n", ns, "-o", "json",
                                    "--show-managed-fields").stdout)  # fmt: skip
    assert ble["metadata"]["managedFields"][0]["manager"] == "kubectl"


def test_explain_uses_the_crd_schema(apiserver: ApiServerProcess) -> None:
    explained = apiserver.kubectl("explain", "device.spec").stdout
    assert "KIND:       Device" in explained and "deviceModelRef" in explained
    assert "The device as declared." in explained


def test_get_watch_prints_changes(apiserver: ApiServerProcess, ns: str, tmp_path: Path) -> None:
    apiserver.kubectl("apply", "-n", ns, "-f", str(_sample("modbus.yaml", ns, tmp_path)))
    watcher = subprocess.Popen(
        [kubectl_binary(), "--kubeconfig", str(apiserver.kubeconfig), "--cache-dir",
         str(apiserver.state / "kube-cache"), "get", "devices", "-n", ns, "-w"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    assert watcher.stdout is not None
    threading.Thread(
        target=lambda: [lines.put(line) for line in watcher.stdout], daemon=True
    ).start()  # type: ignore[union-attr]
    try:
        assert lines.get(timeout=20).split()[:2] == ["NAME", "NODE"]
        assert lines.get(timeout=20).split()[:2] == ["thermostat-1", "edge-node-1"]
        apiserver.kubectl("patch", "device", "thermostat-1", "-n", ns, "--type", "merge",
                       "-p", '{"spec":{"nodeName":"moved"}}')  # fmt: skip
        assert lines.get(timeout=20).split()[:2] == ["thermostat-1", "moved"]
    finally:
        watcher.kill()
        watcher.wait(10)
        watcher.stdout.close()


def test_delete_waits_for_every_kind(apiserver: ApiServerProcess, ns: str, tmp_path: Path) -> None:
    apiserver.kubectl("apply", "-n", ns, "-f", str(_sample("modbus.yaml", ns, tmp_path)))
    _configmap(apiserver, ns, "c1", {"a": "1"})
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p1", "namespace": ns},
           "spec": {"containers": [{"name": "m", "image": "kedge/mapper-modbus:0.1"}]}}  # fmt: skip
    apiserver.kubectl("apply", "-f", "-", stdin=json.dumps(pod))
    labels = {"app": "d1"}
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": "d1", "namespace": ns},
                  "spec": {"selector": {"matchLabels": labels}, "template": {
                      "metadata": {"labels": labels}, "spec": pod["spec"]}}}  # fmt: skip
    apiserver.kubectl("apply", "-f", "-", stdin=json.dumps(deployment))
    for kind, name in [("device", "thermostat-1"), ("devicemodel", "modbus-thermostat"),
                       ("configmap", "c1"), ("pod", "p1"), ("deployment", "d1")]:  # fmt: skip
        deleted = apiserver.kubectl("delete", kind, name, "-n", ns, "--wait", "--timeout=20s")
        assert "deleted" in deleted.stdout
        missing = apiserver.kubectl("get", kind, name, "-n", ns, check=False)
        assert missing.returncode != 0 and "NotFound" in missing.stderr


def test_unknown_fields_are_refused_by_strict_validation(
    apiserver: ApiServerProcess, ns: str
) -> None:
    bad = {"apiVersion": "devices.kubeedge.io/v1beta1", "kind": "Device",
           "metadata": {"name": "bad", "namespace": ns},
           "spec": {"nodeName": "n", "colour": 1}}  # fmt: skip
    refused = apiserver.kubectl("apply", "-f", "-", stdin=json.dumps(bad), check=False)
    assert refused.returncode != 0 and "spec.colour" in refused.stderr
    bad["spec"] = {"nodeName": 7}
    refused = apiserver.kubectl("apply", "-f", "-", stdin=json.dumps(bad), check=False)
    assert refused.returncode != 0 and "spec.nodeName" in refused.stderr


def test_server_side_apply_owns_fields_conflicts_and_prunes(
    apiserver: ApiServerProcess, ns: str
) -> None:
    device = {"apiVersion": "devices.kubeedge.io/v1beta1", "kind": "Device",
              "metadata": {"name": "ssa", "namespace": ns, "labels": {"a": "1", "b": "2"}},
              "spec": {"nodeName": "n1", "deviceModelRef": {"name": "m"}}}  # fmt: skip
    apiserver.kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(device))
    dev = ["device", "ssa", "-n", ns]
    apiserver.kubectl("patch", *dev, "--type", "merge", "-p", '{"spec":{"nodeName":"n2"}}')
    refused = apiserver.kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(device),
                                check=False)  # fmt: skip
    assert refused.returncode != 0
    assert 'conflict with "kubectl-patch"' in refused.stderr and ".spec.nodeName" in refused.stderr
    apiserver.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-",
                      stdin=json.dumps(device))  # fmt: skip
    got = json.loads(apiserver.kubectl("get", *dev, "-o", "json", "--show-managed-fields").stdout)
    assert got["spec"]["nodeName"] == "n1"
    managers = {(m["manager"], m["operation"]) for m in got["metadata"]["managedFields"]}
    assert ("kubectl", "Apply") in managers
    del device["metadata"]["labels"]["b"]  # no longer applied: removed from the object
    apiserver.kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(device))
    labels = json.loads(apiserver.kubectl("get", *dev, "-o", "json").stdout)["metadata"]["labels"]
    assert labels == {"a": "1"}


def test_crds_apply_and_are_served(apiserver: ApiServerProcess) -> None:
    crds = sorted(str(p) for p in (SAMPLES.parent).glob("devices.kubeedge.io_*.yaml"))
    applied = apiserver.kubectl("apply", *[a for path in crds for a in ("-f", path)])
    assert applied.stdout.count("customresourcedefinition.apiextensions.k8s.io/") == 3
    established = apiserver.kubectl(
        "wait", "--for=condition=Established", "crd/devices.devices.kubeedge.io", "--timeout=10s"
    )
    assert "condition met" in established.stdout
    resources = apiserver.kubectl("api-resources", "--api-group=devices.kubeedge.io").stdout
    assert "devices" in resources and "devicemodels" in resources


def test_insecure_mode_serves_plain_http_without_tokens(tmp_path: Path) -> None:
    process = ApiServerProcess(tmp_path / "plain", extra=("--insecure",))
    process.url_scheme = "http"
    process.start()
    try:
        nodes = process.kubectl("get", "namespaces", "-o", "name").stdout
        assert "namespace/default" in nodes
    finally:
        process.stop()
