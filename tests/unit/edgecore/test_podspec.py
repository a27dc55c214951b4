"""Pod spec -> what edged runs (pure parts): images, env, `$(VAR)`, probes, volumes' paths."""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Any

import pytest

from edgecore.edged.images import ImageError, resolve
from edgecore.edged.pod import phase
from edgecore.edged.podspec import Mount, PodConfigError, expand, parse_probe, plan_container
from edgecore.edged.volumes import materialise, mount_table, rewrite

OBJECTS: dict[tuple[str, str, str], dict[str, Any]] = {
    ("configmap", "ns", "settings"): {"data": {"LEVEL": "debug", "config.yaml": "a: 1\n"}},
    ("secret", "ns", "creds"): {"data": {"token": base64.b64encode(b"s3cret").decode()}},
}
POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"app": "x"}},
       "spec": {"containers": []}}  # fmt: skip


def lookup(kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    return OBJECTS.get((kind, namespace, name))


def plan(container: dict[str, Any]) -> Any:
    return plan_container({"name": "c", **container}, POD, "edge-1", lookup, {"PATH": "/bin"})


def test_images_resolve_through_the_table() -> None:
    assert resolve("kedge/mapper-modbus:0.1", [], []) == [sys.executable, "-m", "mappers.modbus"]
    assert resolve("docker.io/kedge/mapper-opcua@sha256:abc", [], ["--x"])[-1] == "--x"
    assert resolve("kedge/host", ["sleep"], ["5"]) == ["sleep", "5"]
    with pytest.raises(ImageError, match="not in the process runtime's table"):
        resolve("nginx:1.25", [], [])
    with pytest.raises(ImageError, match="needs a command"):
        resolve("kedge/host", [], [])


def test_env_sources_and_expansion() -> None:
    made = plan({
        "image": "kedge/python",
        "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}],
        "env": [
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "GREETING", "value": "$(POD) on $(NODE), $$(kept) $(UNKNOWN)"},
        ],
        "args": ["--level", "$(CFG_LEVEL)"],
    })  # fmt: skip
    assert made.error is None
    env = made.env
    assert env["TOKEN"] == "s3cret" and env["CFG_LEVEL"] == "debug" and env["APP"] == "x"
    assert env["GREETING"] == "p on edge-1, $(kept) $(UNKNOWN)"
    assert made.argv[-2:] == ("--level", "debug")
    assert expand("$(A)$(A)", {"A": "x"}) == "xx"


def test_problems_become_waiting_reasons() -> None:
    assert plan({"image": "nginx"}).error[0] == "ErrImagePull"
    missing = {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k"}}}
    error = plan({"image": "kedge/python", "env": [missing]}).error
    assert error == ("CreateContainerConfigError", 'configmap "nope" not found')
    optional = {**missing, "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k",
                                                             "optional": True}}}  # fmt: skip
    assert plan({"image": "kedge/python", "env": [optional]}).error is None
    assert plan({"image": "kedge/python", "command": "sleep"}).error[0] == (
        "CreateContainerConfigError"
    )
    bad_probe = {"image": "kedge/python", "livenessProbe": {"httpGet": {"port": "web"}}}
    assert "not a port" in plan(bad_probe).error[1]


def test_probes_parse_with_kubernetes_defaults() -> None:
    container = {"ports": [{"name": "web", "containerPort": 8080}]}
    probe = parse_probe({"httpGet": {"path": "/healthz", "port": "web"}}, container)
    assert probe is not None and (probe.port, probe.path, probe.period, probe.failures) == (
        8080, "/healthz", 10.0, 3)  # fmt: skip
    tcp = parse_probe({"tcpSocket": {"port": 9}, "periodSeconds": 1}, {})
    assert tcp is not None and tcp.action == "tcp" and tcp.period == 1.0
    with pytest.raises(PodConfigError):
        parse_probe({"periodSeconds": 1}, {})


def test_volumes_are_files_and_mount_paths_are_rewritten(tmp_path: Path) -> None:
    pod = {**POD, "spec": {"containers": [], "volumes": [
        {"name": "cfg", "configMap": {"name": "settings"}},
        {"name": "key", "secret": {"secretName": "creds", "items": [{"key": "token",
                                                                     "path": "t/tok"}]}},
        {"name": "scratch", "emptyDir": {}},
    ]}}  # fmt: skip
    volumes = materialise(pod, tmp_path, lookup)
    assert (volumes["cfg"] / "config.yaml").read_text() == "a: 1\n"
    assert (volumes["key"] / "t" / "tok").read_bytes() == b"s3cret"
    assert oct((volumes["key"] / "t" / "tok").stat().st_mode & 0o777) == "0o600"
    table = mount_table((Mount("cfg", "/etc/app"), Mount("scratch", "/tmp/x")), volumes)
    assert rewrite("/etc/app/config.yaml", table) == f"{volumes['cfg']}/config.yaml"
    assert rewrite("--config=/etc/app/config.yaml", table).startswith(f"--config={volumes['cfg']}")
    assert rewrite("/etc/application", table) == "/etc/application"
    OBJECTS[("configmap", "ns", "settings")]["data"] = {"LEVEL": "info"}
    try:
        materialise(pod, tmp_path, lookup)  # refreshed: the removed key is gone
        assert not (volumes["cfg"] / "config.yaml").exists()
    finally:
        OBJECTS[("configmap", "ns", "settings")]["data"]["config.yaml"] = "a: 1\n"
    escape = {**POD, "spec": {"volumes": [{"name": "k", "secret": {
        "secretName": "creds", "items": [{"key": "token", "path": "../x"}]}}]}}  # fmt: skip
    with pytest.raises(PodConfigError, match="without '..'"):
        materialise(escape, tmp_path, lookup)


def test_phase() -> None:
    running = {"state": {"running": {}}, "ran": True}
    waiting = {"state": {"waiting": {}}, "ran": False}
    done = {"state": {"terminated": {"exitCode": 0}}, "ran": True}
    failed = {"state": {"terminated": {"exitCode": 1}}, "ran": True}
    assert phase([], False) == "Pending"
    assert phase([running, waiting], True) == "Pending"
    assert phase([running, done], True) == "Running"
    assert phase([done], False) == "Succeeded" and phase([done, failed], False) == "Failed"
    assert phase([done], True) == "Running"
