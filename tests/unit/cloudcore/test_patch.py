"""JSON patch, merge patch and strategic merge patch."""

from __future__ import annotations

from typing import Any

import pytest

from cloudcore.apiserver.patch import PatchError, json_patch, merge_patch, strategic_merge_patch


def test_merge_patch_follows_rfc_7386() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]}
    patch = {"a": "z", "c": {"f": None}, "l": [3]}
    assert merge_patch(target, patch) == {"a": "z", "c": {"d": "e"}, "l": [3]}
    assert target["c"] == {"d": "e", "f": "g"}  # untouched


def test_json_patch_operations_and_atomicity() -> None:
    doc = {"spec": {"list": [1, 2], "x": 1}}
    out = json_patch(
        doc,
        [
            {"op": "add", "path": "/spec/list/-", "value": 3},
            {"op": "replace", "path": "/spec/x", "value": 2},
            {"op": "copy", "from": "/spec/x", "path": "/spec/y"},
            {"op": "move", "from": "/spec/y", "path": "/spec/z"},
            {"op": "remove", "path": "/spec/list/0"},
            {"op": "test", "path": "/spec/z", "value": 2},
            {"op": "add", "path": "/metadata~1x", "value": "slash"},
        ],
    )
    assert out == {"spec": {"list": [2, 3], "x": 2, "z": 2}, "metadata/x": "slash"}
    assert doc == {"spec": {"list": [1, 2], "x": 1}}


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        ({"op": "add"}, "array of operations"),
        ([{"op": "remove", "path": "/nope"}], "does not exist"),
        ([{"op": "replace", "path": "/a"}], "needs value"),
        ([{"op": "test", "path": "/a", "value": 2}], "test failed"),
        ([{"op": "add", "path": "/l/9", "value": 1}], "out of range"),
        ([{"op": "frobnicate", "path": "/a"}], "unknown op"),
        ([{"op": "add", "path": "a", "value": 1}], "does not start"),
    ],
)
def test_bad_json_patches_say_why(ops: Any, message: str) -> None:
    with pytest.raises(PatchError, match=message):
        json_patch({"a": 1, "l": []}, ops)


def test_strategic_merge_merges_containers_by_name() -> None:
    pod = {"spec": {"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}],
                    "tolerations": [{"key": "x"}]}}  # fmt: skip
    patched = strategic_merge_patch(
        pod,
        {"spec": {"containers": [{"name": "b", "image": "b:2"}, {"name": "c", "image": "c:1"},
                                 {"name": "a", "$patch": "delete"}],
                  "tolerations": [{"key": "y"}]}},
    )  # fmt: skip
    assert patched["spec"]["containers"] == [
        {"name": "b", "image": "b:2"},
        {"name": "c", "image": "c:1"},
    ]
    assert patched["spec"]["tolerations"] == [{"key": "y"}]  # no merge key: replaced
    with pytest.raises(PatchError, match="merge key"):
        strategic_merge_patch(pod, {"spec": {"containers": [{"image": "x"}]}})
