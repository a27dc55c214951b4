"""The catalog checks each change from the cloud against what it holds: the same devices as a
catalog built from the whole set at once, refusals that change nothing, and a model change that
touches only the devices using it."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from devicetwin.catalog import Catalog
from devicetwin.model import Device
from devicetwin.spec import Document, ManifestError

NODE, NOW = "n1", 1_700_000_000_000
API = "devices.kubeedge.io/v1beta1"


def model(name: str, default: str = "1", props: tuple[str, ...] = ("level",)) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "DeviceModel",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"protocol": "modbus", "properties": [
                {"name": p, "type": "INT", "accessMode": "ReadWrite",
                 "visitors": {"protocolName": "modbus",
                              "configData": {"register": "HoldingRegister", "offset": default}}}
                for p in props]}}  # fmt: skip


def device(name: str, model_name: str, node: str = NODE, desired: str = "5") -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Device",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"deviceModelRef": {"name": model_name}, "nodeName": node,
                     "protocol": {"protocolName": "modbus", "configData": {"port": 502}},
                     "properties": [{"name": "level", "desired": {"value": desired}}]}}  # fmt: skip


def source(body: dict[str, Any]) -> str:
    kind = "devicemodel" if body["kind"] == "DeviceModel" else "device"
    return f"cloud {kind}/default/{body['metadata']['name']}"


def view(devices: list[Device]) -> dict[str, Any]:
    return {d.id: (d.spec, sorted((n, t.expected) for n, t in d.twins.items()))
            for d in devices}  # fmt: skip


def whole(bodies: dict[str, dict[str, Any]]) -> dict[str, Any]:
    docs = [Document(src, 1, copy.deepcopy(body)) for src, body in bodies.items()]
    return view(Catalog(NODE, docs, NOW).bound())


def test_changes_one_by_one_give_what_the_whole_set_gives() -> None:
    catalog, held = Catalog(NODE, [], NOW), {}
    steps: list[tuple[dict[str, Any], bool]] = [
        (model("m"), False), (device("a", "m"), False), (device("b", "m"), False),
        (device("c", "m", node="other"), False), (model("m2"), False),
        (device("d", "m2", desired="7"), False),
        (model("m", default="9"), False),  # every device of m parsed again with the new default
        (device("a", "m", desired="6"), False), (device("b", "m"), True),
        (device("d", "m2"), True), (model("m2"), True),
    ]  # fmt: skip
    for body, delete in steps:
        src = source(body)
        catalog.apply(catalog.check(src, None if delete else body, NOW))
        if delete:
            held.pop(src)
        else:
            held[src] = body
        assert view(catalog.bound()) == whole(held)
    assert sorted(d.id for d in catalog.bound()) == ["default/a"]
    [a] = catalog.bound()
    assert a.spec["properties"][0]["visitors"]["configData"]["offset"] == "9"


@pytest.mark.parametrize(
    ("body", "delete", "why"),
    [
        (device("x", "absent"), False, "no DeviceModel default/absent"),
        (model("m"), True, "no DeviceModel default/m"),  # deleting a model in use
        (model("m", props=("other",)), False, "level"),  # a model the device no longer fits
        ({**device("a", "m"), "apiVersion": "v1"}, False, "apiVersion"),
        ({**device("a", "m"), "kind": "Pod"}, False, "kind"),
        (
            {**device("a", "m"), "spec": {**device("a", "m")["spec"], "nodeName": 3}},
            False,
            "nodeName",
        ),
    ],
)
def test_a_refused_change_changes_nothing(body: dict[str, Any], delete: bool, why: str) -> None:
    catalog = Catalog(NODE, [Document(source(b), 1, b) for b in (model("m"), device("a", "m"))],
                      NOW)  # fmt: skip
    before = view(catalog.bound())
    with pytest.raises(ManifestError, match=why):
        catalog.check(source(body), None if delete else body, NOW)
    assert view(catalog.bound()) == before


def test_the_same_device_from_two_documents_is_refused() -> None:
    catalog = Catalog(NODE, [Document("local.yaml", 1, model("m")),
                             Document("local.yaml", 2, device("a", "m"))], NOW)  # fmt: skip
    with pytest.raises(ManifestError, match="defined twice"):
        catalog.check("cloud device/default/a", device("a", "m"), NOW)


def test_a_model_change_touches_only_the_devices_that_use_it() -> None:
    docs = [model("m"), model("m2"), *(device(f"d{i}", "m" if i % 10 else "m2")
                                       for i in range(200))]  # fmt: skip
    catalog = Catalog(NODE, [Document(source(b), 1, b) for b in docs], NOW)
    change = catalog.check(source(model("m2")), model("m2", default="3"), NOW)
    assert len(change.devices) == 20
    assert len(catalog.check(source(device("d1", "m")), device("d1", "m"), NOW).devices) == 1
