"""Edge desired values adopted into the Device, with the counts that make the rule work."""

from __future__ import annotations

import json
from typing import Any

import pytest

from controllers.desired import EDGE_VERSIONS, adopt, clean_desired, with_seen_versions


def _device(seen: dict[str, int] | None = None) -> dict[str, Any]:
    annotations = {} if seen is None else {EDGE_VERSIONS: json.dumps(seen)}
    return {"metadata": {"name": "d", "annotations": annotations},
            "spec": {"properties": [{"name": "sp", "desired": {"value": "20"}}]}}  # fmt: skip


def test_adopt_when_edge_count_is_newer_writes_value_and_count() -> None:
    device = _device()
    assert adopt(device, {"sp": ("23", 1), "power": ("true", 2)})
    props = {p["name"]: p["desired"]["value"] for p in device["spec"]["properties"]}
    assert props == {"sp": "23", "power": "true"}
    assert json.loads(device["metadata"]["annotations"][EDGE_VERSIONS]) == {"power": 2, "sp": 1}


def test_adopt_when_already_seen_changes_nothing() -> None:
    device = _device({"sp": 3})
    assert not adopt(device, {"sp": ("23", 3)})
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
