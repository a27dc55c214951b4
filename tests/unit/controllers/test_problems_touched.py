"""Device conditions at fleet scale: a pass looks only at the devices whose inputs changed."""

from __future__ import annotations

import asyncio
from typing import Any

from controllers.conditions import EdgeNotes, notes_of
from controllers.devices import DeviceRouting
from controllers.problems import DeviceProblems
from controllers.status import StatusWriter

NodeFacts = tuple[str | None, frozenset[str], frozenset[tuple[str, str]]]
MODEL = {"metadata": {"name": "thermo", "namespace": "default"}}


async def _nothing(*_args: Any) -> None:
    """A write or an event nobody looks at."""


def _device(name: str, node: str, rv: str = "1") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "default", "resourceVersion": rv},
        "spec": {"nodeName": node, "deviceModelRef": {"name": "thermo"},
                 "protocol": {"protocolName": "modbus"}},
    }  # fmt: skip


class Fleet:
    """Devices on nodes, counting which nodes' facts each pass asks for."""

    def __init__(self, nodes: dict[str, int]) -> None:
        self.routing = DeviceRouting()
        self.routing.model_event("ADDED", MODEL)
        for node, count in nodes.items():
            for i in range(count):
                self.routing.device_event("ADDED", _device(f"{node}-d{i}", node))
        self.facts: dict[str, NodeFacts] = dict.fromkeys(
            nodes, ("True", frozenset({"modbus"}), frozenset())
        )
        self.asked: list[str] = []
        self.enough, self.want = asyncio.Event(), 0  # set once `want` facts were asked for
        self.problems = DeviceProblems(self.routing, self._facts, StatusWriter(_nothing), _nothing)

    def _facts(self, node: str) -> NodeFacts:
        self.asked.append(node)
        if self.want and len(self.asked) >= self.want:
            self.enough.set()
        return self.facts[node]

    def check(self, limit: int | None = None) -> list[str]:
        """The nodes whose devices the pass looked at, and the Events' reasons."""
        self.asked.clear()
        reasons = [e["reason"] for e in self.problems.check(limit)]
        return sorted(self.asked) + reasons


def test_a_settled_fleet_costs_nothing_and_a_node_change_costs_its_devices() -> None:
    fleet = Fleet({"edge-1": 3, "edge-2": 2})
    assert fleet.check() == ["edge-1"] * 3 + ["edge-2"] * 2  # the first pass: everything
    assert fleet.check() == []  # nothing touched: nothing looked at
    fleet.facts["edge-2"] = ("True", frozenset(), frozenset())
    assert fleet.check() == []  # a change nobody was told of is not seen (nothing rescans)
    fleet.problems.touch_node("edge-2")
    assert fleet.check() == ["edge-2", "edge-2", "NoMapper", "NoMapper"]
    fleet.problems.touch(("default", "edge-1-d0"))
    assert fleet.check() == ["edge-1"]


def test_a_device_moved_to_another_node_is_looked_at_with_its_new_node() -> None:
    fleet = Fleet({"edge-1": 1, "edge-2": 1})
    fleet.check()
    fleet.routing.device_event("MODIFIED", _device("edge-1-d0", "edge-2", rv="2"))
    assert fleet.check() == ["edge-2"]  # the Device event touched it
    fleet.problems.touch_node("edge-1")
    assert fleet.check() == []  # no longer the old node's
    fleet.problems.touch_node("edge-2")
    assert fleet.check() == ["edge-2", "edge-2"]


def test_a_model_change_touches_every_device() -> None:
    fleet = Fleet({"edge-1": 2, "edge-2": 1})
    fleet.check()
    fleet.routing.model_event("DELETED", MODEL)
    assert fleet.check() == ["edge-1", "edge-1", "edge-2", "ModelNotFound", "ModelNotFound",
                             "ModelNotFound"]  # fmt: skip


def test_a_deleted_device_is_forgotten_with_its_notes() -> None:
    fleet = Fleet({"edge-1": 2})
    fleet.check()
    key = ("default", "edge-1-d0")
    fleet.problems.note(key, notes_of({"unreached": {"setpoint": "device reports 3"}}))
    assert fleet.check() == ["edge-1", "DesiredNotReached"]
    fleet.routing.device_event("DELETED", _device("edge-1-d0", "edge-1"))
    assert fleet.check() == []
    assert key not in fleet.problems.notes
    fleet.problems.touch_node("edge-1")
    assert fleet.check() == ["edge-1"]  # only the device left


def test_notes_for_a_device_not_yet_listed_are_kept_until_it_is() -> None:
    fleet = Fleet({"edge-1": 1})
    fleet.check()
    key = ("default", "late")
    fleet.problems.note(key, notes_of({"unreached": {"setpoint": "device reports 3"}}))
    fleet.check()
    assert fleet.problems.notes[key] != EdgeNotes()
    fleet.routing.device_event("ADDED", _device("late", "edge-1"))
    assert fleet.check() == ["edge-1", "DesiredNotReached"]


def test_a_pass_with_a_limit_leaves_the_rest_for_the_next() -> None:
    fleet = Fleet({"edge-1": 5})
    assert len(fleet.check(limit=2)) == 2 and fleet.problems.pending
    assert len(fleet.check(limit=10)) == 3 and not fleet.problems.pending


async def test_run_when_settled_waits_and_a_touch_wakes_it() -> None:
    fleet = Fleet({"edge-1": 3})
    fleet.want = 3
    task = asyncio.create_task(fleet.problems.run(lambda: True, chunk=1))
    try:
        await asyncio.wait_for(fleet.enough.wait(), 5)
        fleet.asked.clear()
        fleet.enough.clear()
        for _ in range(100):  # a settled fleet: the loop turns, the pass looks at nothing
            await asyncio.sleep(0)
        assert fleet.asked == [] and not fleet.problems.pending
        fleet.problems.touch_node("edge-1")
        await asyncio.wait_for(fleet.enough.wait(), 5)
        assert fleet.asked == ["edge-1"] * 3
    finally:
        task.cancel()
