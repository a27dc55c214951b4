"""The console's views of Kubernetes objects, its desired-value patch and its tokens."""

from __future__ import annotations

import stat
from pathlib import Path

from cloudcore.console.access import ConsoleTokens, Role
from cloudcore.console.views import desired_patch, device_detail, device_view, node_view, outcome

DEVICE = {
    "metadata": {"namespace": "default", "name": "t1"},
    "spec": {"deviceModelRef": {"name": "m"}, "nodeName": "n1",
             "protocol": {"protocolName": "modbus"},
             "properties": [{"name": "temp"},
                            {"name": "set",
                             "desired": {"value": "21", "metadata": {"type": "int"}}},
                            {"name": "power"}]},
    "status": {"conditions": [{"type": "DesiredReached", "status": "False", "reason": "R",
                               "message": "set: clamped"}, "junk"]},
}  # fmt: skip
STATUS = {"status": {"state": "online", "twins": [
    {"propertyName": "set", "reported": {"value": "20", "metadata": {"timestamp": "5"}},
     "observedDesired": {"value": "21"}}]}}  # fmt: skip
MODEL = {"spec": {"properties": [{"name": "set", "type": "INT", "unit": "C",
                                  "accessMode": "ReadWrite"}]}}  # fmt: skip


def test_device_view_when_devicestatus_given_reads_state_from_it() -> None:
    row = device_view(DEVICE, STATUS)
    assert (row["state"], row["model"], row["node"], row["protocol"]) == (
        "online",
        "m",
        "n1",
        "modbus",
    )
    assert [c["type"] for c in row["conditions"]] == ["DesiredReached"]  # junk skipped
    assert device_view(DEVICE, None)["state"] == "unknown"  # no reports anywhere yet


def test_device_detail_when_model_given_joins_spec_twin_and_model() -> None:
    props = {p["name"]: p for p in device_detail(DEVICE, STATUS, MODEL)["properties"]}
    assert props["set"]["reported"] == {"value": "20", "timestamp": "5"}
    assert props["set"]["desired"] == "21" and props["set"]["writable"] is True
    assert props["set"]["type"] == "int" and props["temp"]["writable"] is False
    assert props["power"]["reported"] == {"value": None, "timestamp": None}


def test_desired_patch_when_property_has_desired_keeps_its_metadata() -> None:
    assert desired_patch(DEVICE, "set", "25") == [
        {"op": "test", "path": "/spec/properties/1/name", "value": "set"},
        {"op": "add", "path": "/spec/properties/1/desired/value", "value": "25"},
    ]
    assert desired_patch(DEVICE, "power", "true")[1] == {
        "op": "add",
        "path": "/spec/properties/2/desired",
        "value": {"value": "true"},
    }
    assert desired_patch(DEVICE, "nothing", "1") is None


def test_node_view_when_pods_given_lists_only_its_own() -> None:
    node = {"metadata": {"name": "n1", "labels": {"node-role.kubernetes.io/edge": ""}},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "EdgeReady",
                                       "lastHeartbeatTime": "2026-01-01T00:00:00Z"}]}}  # fmt: skip
    pods = [{"metadata": {"name": "a", "namespace": "x"}, "spec": {"nodeName": "n1"}},
            {"metadata": {"name": "b", "namespace": "x"}, "spec": {"nodeName": "n2"}}]  # fmt: skip
    view = node_view(node, pods)
    assert view["ready"] == "True" and view["edge"] and view["lastHeartbeat"].startswith("2026")
    assert [p["name"] for p in view["pods"]] == ["a"]


def test_console_tokens_when_created_keep_only_a_digest(tmp_path: Path) -> None:
    tokens = ConsoleTokens(tmp_path, kubeconfig_token="kube-admin")
    viewer = tokens.create("ann", Role.VIEWER)
    text = (tmp_path / "console-tokens.json").read_text()
    assert viewer not in text and "ann" in text
    assert stat.S_IMODE((tmp_path / "console-tokens.json").stat().st_mode) == 0o600
    assert tokens.role(f"Bearer {viewer}") == ("ann", Role.VIEWER)
    assert tokens.role("Bearer kube-admin") == ("kubeconfig", Role.ADMIN)
    again = ConsoleTokens(tmp_path).create("ann", Role.ADMIN)  # another process, same name
    assert tokens.role(f"Bearer {viewer}") is None  # replaced
    assert tokens.role(f"Bearer {again}") == ("ann", Role.ADMIN)
    for header in (None, "", "Basic abc", f"bearer {again}", "Bearer "):
        assert tokens.role(header) is None


def test_outcome_when_conditions_name_the_property_says_why() -> None:
    kept = {"type": "DesiredAccepted", "status": "False", "reason": "EdgeValueKept",
            "message": "setpoint: kept 24, written at the edge at T, over the cloud's 30 "
                       "(set without seeing the edge's write); set: kept 1"}  # fmt: skip
    missed = {"type": "DesiredReached", "status": "False", "reason": "DesiredNotReached",
              "message": "setpoint: device reports 24 for desired 30"}  # fmt: skip
    assert outcome("setpoint", "30", "24", [missed, kept]).startswith(
        "EdgeValueKept: kept 24, written at the edge"
    )  # the conflict rule first
    assert outcome("setpoint", "30", "24", [missed]) == (
        "DesiredNotReached: device reports 24 for desired 30"
    )
    assert outcome("set", "1", "1", [kept]) == "EdgeValueKept: kept 1"  # not "setpoint"'s
    assert outcome("power", "true", "true", [kept, missed]) == "reached"
    assert outcome("power", "true", "false", []) == "waiting for the device to show true"
    assert outcome("power", None, "false", [kept]) == ""
