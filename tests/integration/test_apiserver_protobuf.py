"""kubectl's typed commands send protobuf: every `kubectl create <type>` form and `kubectl run`
store exactly the object kubectl meant (kubectl's own JSON of it, from `--dry-run=client`, is the
oracle); malformed protobuf is a 400 with a reason, a kind taken as JSON only a 415."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.apiserver import ApiServerProcess

PROTOBUF = "application/vnd.kubernetes.protobuf"
SERVER_SET = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields")
# (command after `kubectl`, the created object's resource for `kubectl get`)
FORMS = [
    (["create", "configmap", "cm1", "--from-literal=mode=fast", "--from-file={files}/bin.dat"],
     "cm/cm1"),
    (["create", "secret", "generic", "s1", "--from-literal=password=hunter2"], "secret/s1"),
    (["create", "secret", "tls", "t1", "--cert={files}/tls.crt", "--key={files}/tls.key"],
     "secret/t1"),
    (["create", "secret", "docker-registry", "r1", "--docker-server=reg.example",
      "--docker-username=u", "--docker-password=p"], "secret/r1"),
    (["create", "deployment", "web", "--image=kedge/mapper-modbus", "--replicas=2",
      "--port=80"], "deployment/web"),
    (["create", "deployment", "none", "--image=busybox", "--replicas=0"], "deployment/none"),
    (["create", "namespace", "made-by-protobuf"], "namespace/made-by-protobuf"),
    (["create", "serviceaccount", "sa1"], "sa/sa1"),
    (["create", "service", "clusterip", "svc1", "--tcp=80:8080"], "svc/svc1"),
    (["create", "service", "nodeport", "svc2", "--tcp=80:8080", "--node-port=30080"], "svc/svc2"),
    (["create", "service", "externalname", "svc3", "--external-name=example.com"], "svc/svc3"),
    (["create", "role", "r1", "--verb=get,list", "--resource=pods,configmaps"], "role/r1"),
    (["create", "clusterrole", "pb-cr1", "--verb=get", "--resource=nodes"], "clusterrole/pb-cr1"),
    (["create", "rolebinding", "rb1", "--role=r1", "--user=alice",
      "--serviceaccount=default:sa1"], "rolebinding/rb1"),
    (["create", "clusterrolebinding", "pb-crb1", "--clusterrole=pb-cr1", "--group=ops"],
     "clusterrolebinding/pb-crb1"),
    (["run", "p1", "--image=busybox", "--env=A=1", "--port=80", "--labels=app=x",
      "--restart=Never", "--", "sh", "-c", "echo hi"], "pod/p1"),
]  # fmt: skip


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """What the forms read: a binary file, a TLS key pair."""
    where = tmp_path_factory.mktemp("files")
    (where / "bin.dat").write_bytes(b"\x00\xff\xfe binary")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(where / "tls.key"), "-out", str(where / "tls.crt"), "-days", "1",
                    "-subj", "/CN=kedge-test"], check=True, capture_output=True)  # fmt: skip
    yield where


def _comparable(obj: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in obj["metadata"].items() if k not in SERVER_SET and k != "namespace"}
    return {**{k: v for k, v in obj.items() if k != "status"}, "metadata": meta}  # status: server's


@pytest.mark.parametrize(("form", "resource"), FORMS, ids=[" ".join(f[0][:3]) for f in FORMS])
def test_kubectl_create_stores_what_kubectl_meant(
    apiserver: ApiServerProcess, files: Path, form: list[str], resource: str
) -> None:
    form = [arg.format(files=files) for arg in form]
    end = form.index("--") if "--" in form else len(form)  # flags go before a command's args
    dry = [*form[:end], "--dry-run=client", "-o", "json", *form[end:]]
    meant = json.loads(apiserver.kubectl(*dry).stdout)
    apiserver.kubectl(*form)
    stored = json.loads(apiserver.kubectl("get", resource, "-o", "json").stdout)
    assert _within(_comparable(meant), _comparable(stored))  # stored may add server defaults


def _within(meant: Any, stored: Any) -> bool:
    """Everything kubectl meant is stored as it meant it (objects may gain defaults)."""
    if isinstance(meant, dict) and isinstance(stored, dict):
        return all(k in stored and _within(v, stored[k]) for k, v in meant.items())
    return bool(meant == stored)


def test_protobuf_create_keeps_a_zero_that_is_not_a_default(apiserver: ApiServerProcess) -> None:
    apiserver.kubectl("create", "deployment", "zero", "--image=busybox", "--replicas=0")
    spec = json.loads(apiserver.kubectl("get", "deployment", "zero", "-o", "json").stdout)["spec"]
    assert spec["replicas"] == 0  # a pointer sent as 0 is 0, not "unset" (which means 1)
    assert (spec["strategy"], spec["revisionHistoryLimit"], spec["progressDeadlineSeconds"]) == (
        {"type": "RollingUpdate"}, 10, 600)  # Kubernetes' defaults  # fmt: skip


def _post(apiserver: ApiServerProcess, body: bytes, path: str = "/api/v1/namespaces/default/"
          "configmaps") -> tuple[int, dict[str, Any]]:  # fmt: skip
    with apiserver.http() as http:
        answer = http.post(path, content=body, headers={"Content-Type": PROTOBUF})
    return answer.status_code, answer.json()


def _envelope(api_version: bytes, kind: bytes, raw: bytes) -> bytes:
    type_meta = b"\x0a%c%s\x12%c%s" % (len(api_version), api_version, len(kind), kind)
    return b"k8s\x00\x0a" + bytes([len(type_meta)]) + type_meta + b"\x12" + bytes([len(raw)]) + raw


GOOD_META = b"\x0a\x05\x0a\x03bad"  # ObjectMeta{name: "bad"}
BAD_BODIES = {
    "garbage": b"\x00\x01\x02 not protobuf at all",
    "no magic": _envelope(b"v1", b"ConfigMap", GOOD_META)[4:],
    "truncated envelope": _envelope(b"v1", b"ConfigMap", GOOD_META)[:-3],
    "length past the end": b"k8s\x00\x0a\x7f\x0a\x02v1",
    "overlong varint": b"k8s\x00\x08" + b"\xff" * 11,
    "field number 0": _envelope(b"v1", b"ConfigMap", b"\x02\x00"),
    "unknown field": _envelope(b"v1", b"ConfigMap", GOOD_META + b"\xa8\x06\x01"),
    "wrong wire type": _envelope(b"v1", b"ConfigMap", b"\x08\x01"),
    "not UTF-8": _envelope(b"v1", b"ConfigMap", b"\x0a\x04\x0a\x02\xff\xfe"),
    "no kind": b"k8s\x00\x12\x02\x0a\x00",
    "end-group wire type": _envelope(b"v1", b"ConfigMap", b"\x0c"),
}


@pytest.mark.parametrize("name", sorted(BAD_BODIES))
def test_bad_protobuf_is_a_400_with_a_reason(apiserver: ApiServerProcess, name: str) -> None:
    code, status = _post(apiserver, BAD_BODIES[name])
    assert code == 400 and status["kind"] == "Status" and status["reason"] == "BadRequest"
    assert "protobuf" in status["message"]
    assert apiserver.kubectl("get", "cm", "bad", check=False).returncode != 0  # nothing stored


def test_protobuf_of_a_kind_taken_as_json_only_is_a_415(apiserver: ApiServerProcess) -> None:
    body = _envelope(b"devices.kubeedge.io/v1beta1", b"Device", GOOD_META)
    code, status = _post(apiserver, body, "/apis/devices.kubeedge.io/v1beta1/namespaces/default/"
                                          "devices")  # fmt: skip
    assert code == 415 and "JSON only" in status["message"]


def test_protobuf_kind_must_match_the_path(apiserver: ApiServerProcess) -> None:
    code, status = _post(apiserver, _envelope(b"v1", b"Secret", GOOD_META))
    assert code == 400 and status["kind"] == "Status"


def test_a_client_accepting_only_protobuf_gets_406(apiserver: ApiServerProcess) -> None:
    with apiserver.http() as http:
        only = http.get("/api/v1/namespaces/default/configmaps",
                        headers={"Accept": "application/vnd.kubernetes.protobuf"})  # fmt: skip
        both = http.get("/api/v1/namespaces/default/configmaps",
                        headers={"Accept": "application/vnd.kubernetes.protobuf, "
                                           "application/json"})  # fmt: skip
    assert only.status_code == 406 and only.json()["reason"] == "NotAcceptable"
    assert both.status_code == 200 and both.headers["content-type"] == "application/json"


def test_api_resources_names_short_names_categories_and_subresources(
    apiserver: ApiServerProcess,
) -> None:
    table = apiserver.kubectl("api-resources", "-o", "wide").stdout.splitlines()
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert rows["replicasets"][1:3] == ["rs", "apps/v1"] and rows["replicasets"][-1] == "all"
    assert rows["deployments"][1] == "deploy" and "watch" in rows["deployments"][-2]
    assert "controllerrevisions" in rows and rows["pods"][-1] == "all"
    in_all = apiserver.kubectl("api-resources", "--categories=all", "-o", "name").stdout.split()
    assert sorted(in_all) == ["daemonsets.apps", "deployments.apps", "pods", "replicasets.apps",
                              "services"]  # fmt: skip
    listing = apiserver.kubectl("get", "--raw", "/apis/apps/v1").stdout
    scale = next(r for r in json.loads(listing)["resources"] if r["name"] == "deployments/scale")
    assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")
