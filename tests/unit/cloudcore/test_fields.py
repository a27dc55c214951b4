"""managedFields paths in Kubernetes' FieldsV1 form."""

from __future__ import annotations

from cloudcore.apiserver import fields

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "labels": {"app": "x"}},
    "spec": {"containers": [{"name": "c", "image": "i"}], "tolerations": [{"key": "k"}]},
}


def test_leaves_key_list_items_by_name_and_skip_identity() -> None:
    assert fields.leaves(POD) == {
        ("f:metadata", "f:labels", "f:app"),
        ("f:spec", "f:containers", 'k:{"name":"c"}', "f:name"),
        ("f:spec", "f:containers", 'k:{"name":"c"}', "f:image"),
        ("f:spec", "f:tolerations"),  # no merge key: atomic
    }


def test_fields_v1_round_trip_and_display() -> None:
    paths = fields.leaves(POD)
    tree = fields.to_fields_v1(paths)
    assert tree["f:spec"]["f:containers"]['k:{"name":"c"}']["."] == {}
    assert fields.from_fields_v1(tree) == paths
    path = ("f:spec", "f:containers", 'k:{"name":"c"}', "f:image")
    assert fields.display(path) == '.spec.containers[name="c"].image'
    assert fields.value_at(POD, path) == "i"
    assert fields.value_at(POD, ("f:spec", "f:missing")) is fields.ABSENT


def test_remove_and_update_ownership() -> None:
    obj = {"metadata": {"labels": {"a": "1", "b": "2"}}}
    fields.remove(obj, ("f:metadata", "f:labels", "f:b"))
    assert obj == {"metadata": {"labels": {"a": "1"}}}
    first = fields.after_update([], None, obj, "alice", "v1", "t0")
    changed = {"metadata": {"labels": {"a": "9"}}}
    second = fields.after_update(first, obj, changed, "bob", "v1", "t1")
    assert [(e["manager"], fields.owned(e)) for e in second] == [
        ("bob", {("f:metadata", "f:labels", "f:a")})
    ]
