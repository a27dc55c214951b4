"""The scale subresource with the real kubectl: Deployments, ReplicaSets and a custom resource
whose CRD declares it; bad Scale bodies are refused and change nothing."""

from __future__ import annotations

import json

from harness.apiserver import ApiServerProcess

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.kedge.io"},
    "spec": {"group": "example.kedge.io", "scope": "Namespaced",
             "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
             "versions": [{"name": "v1", "served": True, "storage": True,
                           "schema": {"openAPIV3Schema": {
                               "type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                           "subresources": {"status": {}, "scale": {
                               "specReplicasPath": ".spec.size",
                               "statusReplicasPath": ".status.size",
                               "labelSelectorPath": ".status.selector"}}}]},
}  # fmt: skip


def test_kubectl_scale_on_a_custom_resource_that_declares_it(apiserver: ApiServerProcess) -> None:
    apiserver.kubectl("apply", "-f", "-", stdin=json.dumps(CRD))
    widget = {
        "apiVersion": "example.kedge.io/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": "default"},
        "spec": {"size": 1},
    }
    apiserver.kubectl("apply", "-f", "-", stdin=json.dumps(widget))
    apiserver.kubectl("scale", "widget", "w", "--replicas=4")
    stored = json.loads(apiserver.kubectl("get", "widget", "w", "-o", "json").stdout)
    assert stored["spec"]["size"] == 4
    scale = json.loads(
        apiserver.kubectl(
            "get", "--raw", "/apis/example.kedge.io/v1/namespaces/default/widgets/w/scale"
        ).stdout
    )
    assert scale["kind"] == "Scale" and scale["spec"] == {"replicas": 4}


def test_bad_scale_bodies_are_refused(apiserver: ApiServerProcess) -> None:
    apiserver.kubectl("create", "deployment", "scaled", "--image=busybox")
    path = "/apis/apps/v1/namespaces/default/deployments/scaled/scale"
    with apiserver.http() as http:
        current = http.get(path).json()
        for bad in ({"spec": {"replicas": -1}}, {"spec": {"replicas": "3"}}, {"spec": []}, []):
            answer = http.put(path, json=bad)
            assert answer.status_code == 400 and answer.json()["kind"] == "Status", bad
        stale = {**current, "spec": {"replicas": 5},
                 "metadata": {**current["metadata"], "resourceVersion": "1"}}  # fmt: skip
        assert http.put(path, json=stale).status_code == 409
        applied = http.patch(
            path, content=b"{}", headers={"Content-Type": "application/apply-patch+yaml"}
        )
        assert applied.status_code == 415
        assert http.put(path, json={**current, "spec": {"replicas": 2}}).json()["spec"] == {
            "replicas": 2}  # fmt: skip
    assert apiserver.kubectl("get", "deploy", "scaled", "-o",
                             "jsonpath={.spec.replicas}").stdout == "2"  # fmt: skip
