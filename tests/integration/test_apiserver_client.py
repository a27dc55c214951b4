"""The official `kubernetes` Python client against `kedge apiserver`, as controllers use it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from harness.apiserver import ApiServerProcess

GROUP, VERSION = "devices.kubeedge.io", "v1beta1"
CONTAINER = {"name": "m", "image": "kedge/mapper-modbus:0.1"}
TWIN = {"propertyName": "t", "reported": {"value": "1"}}


@pytest.fixture
def api(apiserver: ApiServerProcess) -> Iterator[client.ApiClient]:
    with apiserver.api_client() as made:
        yield made


def _device(name: str, node: str = "n1") -> dict[str, object]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Device",
        "metadata": {"name": name, "labels": {"kind": "thermo"}},
        "spec": {"nodeName": node, "deviceModelRef": {"name": "m"}},
    }


def test_core_v1_configmaps_and_pods(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": "core"}})
    made = core.create_namespaced_config_map(
        "core", {"metadata": {"name": "c"}, "data": {"a": "1"}}
    )
    assert made.metadata.uid and made.metadata.resource_version
    assert core.read_namespaced_config_map("c", "core").data == {"a": "1"}
    patched = core.patch_namespaced_config_map("c", "core", {"data": {"b": "2"}})
    assert patched.data == {"a": "1", "b": "2"}
    patched.data = {"z": "9"}
    replaced = core.replace_namespaced_config_map("c", "core", patched)
    assert replaced.data == {"z": "9"}
    stale = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="c", resource_version=made.metadata.resource_version)
    )
    with pytest.raises(ApiException) as conflict:
        core.replace_namespaced_config_map("c", "core", stale)
    assert conflict.value.status == 409
    assert [c.metadata.name for c in core.list_namespaced_config_map("core").items] == ["c"]
    pod = {"metadata": {"name": "p", "labels": {"app": "m"}},
           "spec": {"nodeName": "n1", "containers": [CONTAINER]}}  # fmt: skip
    core.create_namespaced_pod("core", pod)
    status = core.patch_namespaced_pod_status("p", "core", {"status": {"phase": "Running"}})
    assert status.status.phase == "Running" and status.spec.node_name == "n1"
    on_node = core.list_pod_for_all_namespaces(
        field_selector="spec.nodeName=n1,status.phase!=Failed"
    )
    assert [p.metadata.name for p in on_node.items] == ["p"]
    core.delete_namespaced_config_map("c", "core")
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_config_map("c", "core")
    assert missing.value.status == 404


def test_apps_v1_deployments_with_status(api: client.ApiClient) -> None:
    apps = client.AppsV1Api(api)
    labels = {"app": "mapper"}
    body = {"metadata": {"name": "d"}, "spec": {"replicas": 1, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels},
                         "spec": {"containers": [CONTAINER]}}}}  # fmt: skip
    made = apps.create_namespaced_deployment("default", body)
    assert made.metadata.generation == 1
    scaled = apps.patch_namespaced_deployment("d", "default", {"spec": {"replicas": 2}})
    assert scaled.spec.replicas == 2 and scaled.metadata.generation == 2
    status = apps.patch_namespaced_deployment_status(
        "d", "default", {"status": {"readyReplicas": 2}}
    )
    assert status.status.ready_replicas == 2 and status.metadata.generation == 2
    ignored = apps.patch_namespaced_deployment("d", "default", {"status": {"readyReplicas": 0}})
    assert ignored.status.ready_replicas == 2  # status changes only through /status
    scaled.spec.replicas = 3
    scaled.metadata.resource_version = None
    assert apps.replace_namespaced_deployment("d", "default", scaled).spec.replicas == 3
    apps.delete_namespaced_deployment("d", "default")
    assert apps.list_namespaced_deployment("default").items == []


def test_custom_objects_crud_and_status(api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api)
    created = custom.create_namespaced_custom_object(
        GROUP, VERSION, "default", "devices", _device("a")
    )
    assert created["metadata"]["generation"] == 1
    listed = custom.list_namespaced_custom_object(
        GROUP, VERSION, "default", "devices", label_selector="kind=thermo"
    )
    assert [i["metadata"]["name"] for i in listed["items"]] == ["a"]
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, "default", "devices", "a", {"spec": {"nodeName": "n2"}}
    )
    status = custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, "default", "devices", "a",
        {"status": {"state": "online", "twins": [TWIN]}},
    )  # fmt: skip
    assert status["status"]["state"] == "online" and status["spec"]["nodeName"] == "n2"
    got = custom.get_namespaced_custom_object(GROUP, VERSION, "default", "devices", "a")
    got["spec"]["nodeName"] = "n3"
    replaced = custom.replace_namespaced_custom_object(
        GROUP, VERSION, "default", "devices", "a", got
    )
    assert replaced["metadata"]["generation"] == 3 and replaced["status"]["state"] == "online"
    custom.delete_namespaced_custom_object(GROUP, VERSION, "default", "devices", "a")
    with pytest.raises(ApiException) as missing:
        custom.get_namespaced_custom_object(GROUP, VERSION, "default", "devices", "a")
    assert missing.value.status == 404


def test_watch_resumes_from_a_version_and_relists_after_gone(api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(GROUP, VERSION, "default", "devices", _device("w1"))
    listed = custom.list_namespaced_custom_object(GROUP, VERSION, "default", "devices")
    since = listed["metadata"]["resourceVersion"]
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, "default", "devices", "w1", {"spec": {"nodeName": "x"}}
    )
    custom.create_namespaced_custom_object(GROUP, VERSION, "default", "devices", _device("w2"))
    stream = watch.Watch().stream(
        custom.list_namespaced_custom_object, GROUP, VERSION, "default", "devices",
        resource_version=since, timeout_seconds=5,
    )  # fmt: skip
    seen = []
    for event in stream:
        seen.append((event["type"], event["object"]["metadata"]["name"]))
        if len(seen) == 2:
            break
    stream.close()  # ends the HTTP response of the watch
    assert seen == [("MODIFIED", "w1"), ("ADDED", "w2")]
    for n in range(30):  # push `since` out of the 20-change history
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, "default", "devices", "w2", {"metadata": {"labels": {"n": str(n)}}}
        )
    with pytest.raises(ApiException) as gone:
        for _ in watch.Watch().stream(
            custom.list_namespaced_custom_object, GROUP, VERSION, "default", "devices",
            resource_version=since, timeout_seconds=5,
        ):  # fmt: skip
            pass
    assert gone.value.status == 410
    relisted = custom.list_namespaced_custom_object(GROUP, VERSION, "default", "devices")
    assert {i["metadata"]["name"] for i in relisted["items"]} >= {"w1", "w2"}
    fresh = watch.Watch().stream(
        custom.list_namespaced_custom_object, GROUP, VERSION, "default", "devices",
        resource_version=relisted["metadata"]["resourceVersion"], timeout_seconds=5,
    )  # fmt: skip
    custom.delete_namespaced_custom_object(GROUP, VERSION, "default", "devices", "w1")
    first = next(iter(fresh))
    fresh.close()
    assert (first["type"], first["object"]["metadata"]["name"]) == ("DELETED", "w1")
