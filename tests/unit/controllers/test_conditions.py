"""Device conditions: what is wrong, said once, with transition times that mean something."""

from __future__ import annotations

from typing import Any

import pytest

from controllers.conditions import EdgeNotes, Facts, conditions, notes_of, protocol_of
from controllers.devices import DeviceRouting
from controllers.problems import DeviceProblems
from controllers.status import StatusWriter

READY = Facts(True, "True", frozenset({"modbus"}))


async def _nothing(*_args: Any) -> None:
    """A write or an event nobody looks at."""


def _device(node: str = "edge-1", model: str = "thermo", **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "devices.kubeedge.io/v1beta1", "kind": "Device",
        "metadata": {"name": "t1", "namespace": "default", "uid": "u1"},
        "spec": {"nodeName": node, "deviceModelRef": {"name": model},
                 "protocol": {"protocolName": "modbus"}},
        "status": status,
    }  # fmt: skip


def _by_type(found: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in found}


def test_conditions_when_all_is_well_are_true() -> None:
    found = _by_type(conditions(_device(), "modbus", READY, "T1"))
    assert found == {"ModelFound": ("True", "ModelFound"), "NodeReady": ("True", "NodeReady"),
                     "MapperAvailable": ("True", "MapperRegistered"),
                     "PropertiesServed": ("True", "PropertiesServed"),
                     "DesiredReached": ("True", "DesiredReached"),
                     "DesiredAccepted": ("True", "CloudValuesApplied")}  # fmt: skip


def test_conditions_name_each_problem() -> None:
    missing_model = Facts(False, "True", frozenset({"modbus"}))
    assert _by_type(conditions(_device(), "modbus", missing_model, "T"))["ModelFound"] == (
        "False", "ModelNotFound")  # fmt: skip
    unknown = _by_type(conditions(_device(), "modbus", Facts(True, None, frozenset()), "T"))
    assert unknown["NodeReady"] == ("False", "NodeUnknown")
    assert unknown["MapperAvailable"][0] == "Unknown"
    silent = _by_type(conditions(_device(), "modbus", Facts(True, "Unknown", frozenset()), "T"))
    assert silent["NodeReady"] == ("False", "NodeNotReady")
    no_mapper = _by_type(conditions(_device(), "modbus", Facts(True, "True", frozenset()), "T"))
    assert no_mapper["MapperAvailable"] == ("False", "NoMapper")
    unbound = _by_type(conditions(_device(node=""), "modbus", READY, "T"))
    assert set(unbound) == {"ModelFound"}


def test_transition_time_when_status_unchanged_is_kept() -> None:
    first = conditions(_device(), "modbus", READY, "T1")
    again = conditions(_device(conditions=first), "modbus", READY, "T2")
    assert [c["lastTransitionTime"] for c in again] == ["T1"] * 6
    flipped = conditions(_device(conditions=first), "modbus", Facts(True, "Unknown", frozenset()),
                         "T3")  # fmt: skip
    assert {c["type"]: c["lastTransitionTime"] for c in flipped}["NodeReady"] == "T3"


def test_protocol_when_device_names_none_comes_from_the_model() -> None:
    device = _device()
    device["spec"].pop("protocol")
    model = {"spec": {"protocol": "opcua"}}
    assert protocol_of(device, model) == "opcua"
    assert protocol_of(_device(), model) == "modbus"


def test_problems_when_they_appear_are_announced_once_and_again_after_a_fix() -> None:
    routing = DeviceRouting()
    routing.device_event("ADDED", _device())
    Facts3 = tuple[str | None, frozenset[str], frozenset[tuple[str, str]]]
    facts: dict[str, Facts3] = {"edge-1": ("True", frozenset(), frozenset())}
    writer = StatusWriter(_nothing)
    problems = DeviceProblems(routing, lambda node: facts[node], writer, _nothing)
    events = problems.check()
    assert sorted(e["reason"] for e in events) == ["ModelNotFound", "NoMapper"]
    assert events[0]["involvedObject"]["kind"] == "Device" and events[0]["type"] == "Warning"
    assert problems.check() == []  # still the same problems: said once
    assert writer.pending == 1
    facts["edge-1"] = ("True", frozenset({"modbus"}), frozenset())
    problems.touch_node("edge-1")
    assert [e["reason"] for e in problems.check()] == []  # fixed: nothing to warn about
    facts["edge-1"] = ("True", frozenset(), frozenset())
    problems.touch_node("edge-1")
    assert [e["reason"] for e in problems.check()] == ["NoMapper"]  # broken again: said again


def test_problems_when_already_shown_before_a_restart_are_not_announced_again() -> None:
    routing = DeviceRouting()
    shown = conditions(_device(), "modbus", Facts(True, "True", frozenset()), "T0")
    routing.device_event("ADDED", _device(conditions=shown))
    routing.model_event("ADDED", {"metadata": {"name": "thermo", "namespace": "default"}})
    writer = StatusWriter(_nothing)
    problems = DeviceProblems(
        routing, lambda _n: ("True", frozenset(), frozenset()), writer, _nothing
    )
    assert problems.check() == []
    assert writer.pending == 0  # nothing changed: nothing written


def _notes(**raw: Any) -> EdgeNotes:
    return notes_of(raw)


def test_conditions_when_a_mapper_stopped_say_so_and_when() -> None:
    facts = Facts(True, "True", frozenset(), frozenset({("modbus", "2026-12-06T22:00:00Z")}))
    found = {c["type"]: c for c in conditions(_device(), "modbus", facts, "T")}
    assert found["MapperAvailable"]["reason"] == "MapperStopped"
    assert "stopped at 2026-12-06T22:00:00Z" in found["MapperAvailable"]["message"]


def test_conditions_from_the_edge_notes_name_each_property() -> None:
    notes = _notes(
        unreached={"setpoint": "device reports 35 for desired 40", "power": "write refused: x"},
        overruled={"mode": {"refused": "eco", "kept": "boost", "keptSince": 1_765_058_400_000}},
        errors={"video": "STREAM properties are not served by kedge's modbus mapper"},
    )
    facts = Facts(True, "True", frozenset({"modbus"}), frozenset(), notes.unreached,
                  notes.overruled, notes.errors)  # fmt: skip
    found = {c["type"]: c for c in conditions(_device(), "modbus", facts, "T")}
    assert (found["DesiredReached"]["status"], found["DesiredReached"]["reason"]) == (
        "False", "DesiredNotReached")  # fmt: skip
    assert found["DesiredReached"]["message"] == (
        "power: write refused: x; setpoint: device reports 35 for desired 40"
    )
    assert found["DesiredAccepted"]["reason"] == "EdgeValueKept"
    assert found["DesiredAccepted"]["message"] == (
        "mode: kept boost, written at the edge at 2025-12-06T22:00:00Z, over the cloud's eco "
        "(set without seeing the edge's write)"
    )
    assert found["PropertiesServed"]["reason"] == "PropertyNotServed"
    assert "video: STREAM" in found["PropertiesServed"]["message"]


@pytest.mark.parametrize(
    "raw",
    [
        {"unreached": ["setpoint"]},
        {"unreached": {"setpoint": 35}},
        {"overruled": {"mode": {"refused": "eco"}}},
        {"overruled": {"mode": {"refused": "eco", "kept": "boost", "keptSince": "yesterday"}}},
        {"errors": "everything"},
    ],
)
def test_notes_when_malformed_are_refused(raw: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        notes_of(raw)


def _served(device: dict[str, Any]) -> tuple[DeviceRouting, DeviceProblems]:
    """A device with its model, on a ready node that runs its mapper."""
    routing = DeviceRouting()
    routing.device_event("ADDED", device)
    routing.model_event("ADDED", {"metadata": {"name": "thermo", "namespace": "default"}})
    problems = DeviceProblems(
        routing,
        lambda _n: ("True", frozenset({"modbus"}), frozenset()),
        StatusWriter(_nothing),
        _nothing,
    )
    return routing, problems


def test_problems_announce_each_new_conflict_but_a_missed_value_once() -> None:
    _, problems = _served(_device())
    assert problems.check() == []
    missed = _notes(unreached={"setpoint": "device reports 35 for desired 40"})
    problems.note(("default", "t1"), missed)
    assert [e["reason"] for e in problems.check()] == ["DesiredNotReached"]
    problems.note(("default", "t1"), _notes(unreached={"setpoint": "device reports 34 for 40"}))
    assert problems.check() == []  # still not reached: said once
    conflict = {"refused": "22", "kept": "25", "keptSince": 1_765_058_400_000}
    problems.note(("default", "t1"), _notes(overruled={"setpoint": conflict}))
    assert [e["reason"] for e in problems.check()] == ["EdgeValueKept"]
    problems.note(("default", "t1"), _notes(overruled={"setpoint": {**conflict, "refused": "23"}}))
    assert [e["reason"] for e in problems.check()] == ["EdgeValueKept"]  # a new conflict: news


def test_problems_keep_a_cloud_detected_conflict_until_a_newer_cloud_value() -> None:
    device = _device()
    device["spec"]["properties"] = [{"name": "setpoint", "desired": {"value": "25"}}]
    routing, problems = _served(device)
    problems.overrule(("default", "t1"), [("setpoint", "22", "25", 1_765_058_400_000)])
    assert [e["reason"] for e in problems.check()] == ["EdgeValueKept"]
    newer = _device()
    newer["metadata"]["resourceVersion"] = "2"
    newer["spec"]["properties"] = [{"name": "setpoint", "desired": {"value": "24"}}]
    routing.device_event("MODIFIED", newer)  # the user's next value, made having seen 25
    problems.check()
    facts = problems._facts(("default", "t1"), newer, {})
    assert facts.overruled == ()
