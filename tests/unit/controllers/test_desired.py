"""Edge desired values adopted into the Device, with the counts that make the rule work."""

from __future__ import annotations

import json
from typing import Any

import pytest

from controllers.desired import (
    EdgeWrite,
    adopt,
    clean_desired,
    conflicts,
    with_seen_versions,
)
from kedge.channel.routes import EDGE_VERSIONS


def _device(seen: dict[str, int] | None = None) -> dict[str, Any]:
    annotations = {} if seen is None else {EDGE_VERSIONS: json.dumps(seen)}
    return {"metadata": {"name": "d", "annotations": annotations},
            "spec": {"properties": [{"name": "sp", "desired": {"value": "20"}}]}}  # fmt: skip


def test_adopt_when_edge_count_is_newer_writes_value_and_count() -> None:
    device = _device()
    assert adopt(device, {"sp": EdgeWrite("23", 1), "power": EdgeWrite("true", 2)})
    props = {p["name"]: p["desired"]["value"] for p in device["spec"]["properties"]}
    assert props == {"sp": "23", "power": "true"}
    assert json.loads(device["metadata"]["annotations"][EDGE_VERSIONS]) == {"power": 2, "sp": 1}


def test_adopt_when_already_seen_changes_nothing() -> None:
    device = _device({"sp": 3})
    assert not adopt(device, {"sp": EdgeWrite("23", 3)})
    assert device["spec"]["properties"][0]["desired"]["value"] == "20"


def test_delivered_device_always_carries_the_annotation() -> None:
    plain = {"metadata": {"name": "d"}, "spec": {}}
    assert with_seen_versions(plain)["metadata"]["annotations"] == {EDGE_VERSIONS: "{}"}
    assert "annotations" not in plain["metadata"]  # the informer's copy is not touched


@pytest.mark.parametrize(
    "raw",
    [
        [],
        {"sp": "23"},
        {"sp": {"value": 23, "edgeVersion": 1}},
        {"sp": {"value": "x"}},
        {"sp": {"value": "x", "edgeVersion": 0}},
    ],  # fmt: skip
)
def test_clean_desired_when_malformed_is_refused(raw: Any) -> None:
    with pytest.raises(ValueError, match="desired"):
        clean_desired(raw)


def test_conflicts_name_cloud_values_the_node_never_received() -> None:
    """The Device says 20; the node last received 21 and wrote 23 at the edge: someone set 20
    in the cloud meanwhile, and the adoption of 23 replaces it unseen."""
    assert conflicts(_device(), {"sp": EdgeWrite("23", 1, "21", 5)}) == [("sp", "20", "23", 5)]
    # the node had received 20 (and refused it itself, or wrote over it): not the cloud's news
    assert conflicts(_device(), {"sp": EdgeWrite("23", 1, "20", 5)}) == []
    assert conflicts(_device({"sp": 1}), {"sp": EdgeWrite("23", 1, "21", 5)}) == []  # seen
    assert conflicts(_device(), {"sp": EdgeWrite("20", 1, "21", 5)}) == []  # same value


def test_clean_desired_reads_what_the_node_held() -> None:
    raw = {"sp": {"value": "23", "edgeVersion": 2, "declared": "21", "at": 7}}
    assert clean_desired(raw) == {"sp": EdgeWrite("23", 2, "21", 7)}
    assert clean_desired({"sp": {"value": "23", "edgeVersion": 2}}) == {"sp": EdgeWrite("23", 2)}
