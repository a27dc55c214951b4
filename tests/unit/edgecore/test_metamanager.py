"""What the cloud sent, kept on disk: versions, tombstones, documents for the twin layer."""

from __future__ import annotations

from pathlib import Path

import pytest

from devicetwin.catalog import Catalog
from edgecore.metamanager import MetaStore

MODEL = {"apiVersion": "devices.kubeedge.io/v1beta1", "kind": "DeviceModel",
         "metadata": {"name": "m", "namespace": "default"},
         "spec": {"protocol": "modbus", "properties": [{"name": "t", "type": "INT"}]}}  # fmt: skip
DEVICE = {"apiVersion": "devices.kubeedge.io/v1beta1", "kind": "Device",
          "metadata": {"name": "d", "namespace": "default"},
          "spec": {"nodeName": "n1", "deviceModelRef": {"name": "m"},
                   "protocol": {"protocolName": "modbus",
                                "configData": {"port": 5020}}}}  # fmt: skip


def test_objects_survive_a_restart_and_build_devices(tmp_path: Path) -> None:
    store = MetaStore(tmp_path / "meta.db")
    assert store.apply("device/default/d", 10, DEVICE)
    assert store.apply("devicemodel/default/m", 9, MODEL)
    store.close()
    again = MetaStore(tmp_path / "meta.db")
    [device] = Catalog("n1", again.documents(), 0).bound()
    assert device.id == "default/d" and device.protocol == "modbus"


def test_older_versions_and_late_updates_after_a_deletion_lose(tmp_path: Path) -> None:
    store = MetaStore(tmp_path / "meta.db")
    store.apply("device/default/d", 10, DEVICE)
    assert not store.apply("device/default/d", 9, {**DEVICE, "spec": {}})
    assert store.apply("device/default/d", 11, None)  # deleted
    assert not store.apply("device/default/d", 10, DEVICE)  # a late repeat: still deleted
    assert store.documents() == [] and store.versions() == {"device/default/d": 11}
    with pytest.raises(ValueError, match="unknown object kind"):
        store.apply("service/default/x", 1, {})


def test_workload_objects_are_kept_apart_from_devices(tmp_path: Path) -> None:
    store = MetaStore(tmp_path / "meta.db")
    pod = {"metadata": {"name": "p", "namespace": "default"}, "spec": {"containers": []}}
    store.apply("device/default/d", 1, DEVICE)
    store.apply("pod/default/p", 2, pod)
    store.apply("configmap/default/c", 3, {"data": {"k": "v"}})
    assert [d.source for d in store.documents()] == ["cloud device/default/d"]
    assert store.objects("pod") == [pod]
    assert store.get("configmap/default/c") == {"data": {"k": "v"}}
    store.apply("configmap/default/c", 4, None)
    assert store.get("configmap/default/c") is None and store.get("secret/default/s") is None
