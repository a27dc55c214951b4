"""openAPIV3Schema validation with defaults and pruning, on the Device CRD itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from cloudcore.apiserver.validation import validate

CRD = yaml.safe_load(
    (Path(__file__).parents[3] / "crds/devices.kubeedge.io_devices.yaml").read_text()
)
SCHEMA = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def device(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "devices.kubeedge.io/v1beta1", "kind": "Device",
            "metadata": {"name": "d"}, "spec": spec}  # fmt: skip


def test_valid_device_passes_unchanged() -> None:
    prop = {"name": "t", "collectCycle": "2s", "visitors": {"configData": {"any": {"x": 1}}}}
    obj = device(nodeName="n1", properties=[prop])
    result = validate(SCHEMA, obj)
    assert result.errors == [] and result.unknown == [] and result.value == obj


def test_errors_name_the_field() -> None:
    result = validate(SCHEMA, device(nodeName=5, properties=[{"desired": {"value": 1}}]))
    paths = [path for path, _ in result.errors]
    assert paths == ["spec.nodeName", "spec.properties[0].desired.value", "spec.properties[0].name"]


def test_unknown_fields_are_pruned_and_reported() -> None:
    result = validate(SCHEMA, device(nodeName="n1", colour="red"))
    assert result.unknown == ["spec.colour"] and "colour" not in result.value["spec"]


def test_defaults_and_enums() -> None:
    schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "mode": {"type": "string", "enum": ["a", "b"], "default": "a"},
        "n": {"type": "integer", "minimum": 1, "maximum": 3}}}}}  # fmt: skip
    assert validate(schema, {"spec": {}}).value == {"spec": {"mode": "a"}}
    errors = validate(schema, {"spec": {"mode": "c", "n": 4}}).errors
    assert [p for p, _ in errors] == ["spec.mode", "spec.n"]
