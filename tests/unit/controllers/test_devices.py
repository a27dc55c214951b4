"""Which node holds which device, from Device and DeviceModel events."""

from __future__ import annotations

from typing import Any

from controllers.devices import DeviceRouting


def device(name: str, node: str, model: str = "m", rv: str = "1") -> dict[str, Any]:
    return {"metadata": {"namespace": "default", "name": name, "resourceVersion": rv},
            "spec": {"nodeName": node, "deviceModelRef": {"name": model}}}  # fmt: skip


def model(name: str, rv: str = "1") -> dict[str, Any]:
    return {"metadata": {"namespace": "default", "name": name, "resourceVersion": rv}}


def summary(changes: list[Any]) -> list[tuple[str, str, str]]:
    return [(c.node, c.action, c.key[1]) for c in changes]


def test_device_waits_for_its_model_then_goes_to_its_node() -> None:
    routing = DeviceRouting()
    changes, problems = routing.device_event("ADDED", device("d1", "n1"))
    assert changes == [] and [p.reason for p in problems] == ["ModelNotFound"]
    changes, problems = routing.model_event("ADDED", model("m"))
    assert summary(changes) == [("n1", "upsert", "d1")] and problems == []
    assert changes[0].model == model("m") and changes[0].device == device("d1", "n1")


def test_node_name_change_moves_the_device() -> None:
    routing = DeviceRouting()
    routing.model_event("ADDED", model("m"))
    routing.device_event("ADDED", device("d1", "n1"))
    changes, _ = routing.device_event("MODIFIED", device("d1", "n2", rv="2"))
    assert summary(changes) == [("n1", "remove", "d1"), ("n2", "upsert", "d1")]
    changes, _ = routing.device_event("MODIFIED", device("d1", "", rv="3"))
    assert summary(changes) == [("n2", "remove", "d1")]


def test_model_change_reaches_every_device_using_it() -> None:
    routing = DeviceRouting()
    routing.model_event("ADDED", model("m"))
    routing.model_event("ADDED", model("other"))
    for name, node in (("a", "n1"), ("b", "n2")):
        routing.device_event("ADDED", device(name, node))
    routing.device_event("ADDED", device("c", "n1", model="other"))
    changes, _ = routing.model_event("MODIFIED", model("m", rv="2"))
    assert summary(changes) == [("n1", "upsert", "a"), ("n2", "upsert", "b")]
    changes, problems = routing.model_event("DELETED", model("m"))
    assert summary(changes) == [("n1", "remove", "a"), ("n2", "remove", "b")]
    assert len(problems) == 2
    assert summary(routing.by_node("n1")) == [("n1", "upsert", "c")]


def test_deleted_device_leaves_its_node() -> None:
    routing = DeviceRouting()
    routing.model_event("ADDED", model("m"))
    routing.device_event("ADDED", device("d1", "n1"))
    changes, _ = routing.device_event("DELETED", device("d1", "n1"))
    assert summary(changes) == [("n1", "remove", "d1")] and routing.by_node("n1") == []
