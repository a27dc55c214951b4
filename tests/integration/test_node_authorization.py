"""Node identities confined as Kubernetes' Node authorizer and NodeRestriction confine kubelets:
every row of the node access tables (cloudcore/apiserver/builtins.py), each tried both ways with
`system:node:node-a`'s token against a real `kedge apiserver`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloudcore.apiserver.auth import Tokens
from harness.apiserver import ApiServerProcess

LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
PODS = "/api/v1/namespaces/default/pods"
DEVICES = "/apis/devices.kubeedge.io/v1beta1/namespaces/default/devices"
MERGE = {"Content-Type": "application/merge-patch+json"}


def _pod(name: str, node: str, secret: str, config: str) -> dict[str, Any]:
    container = {"name": "c", "image": "kedge/python",
                 "envFrom": [{"configMapRef": {"name": config}}]}  # fmt: skip
    return {"metadata": {"name": name}, "spec": {"nodeName": node, "containers": [container],
            "volumes": [{"name": "s", "secret": {"secretName": secret}}]}}  # fmt: skip


def _lease(name: str, **meta: str) -> dict[str, Any]:
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, **meta} if name else meta, "spec": {}}  # fmt: skip


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Path]]:
    """An API server with node-a's and node-b's objects; yields node-a's client."""
    server = ApiServerProcess(tmp_path_factory.mktemp("authz")).start()
    try:
        with server.http() as admin:
            for node in ("node-a", "node-b"):
                n = node[-1]
                assert admin.post("/api/v1/nodes", json={"metadata": {"name": node}}).is_success
                admin.post(LEASES, json=_lease(node)).raise_for_status()
                for kind, name in (("secrets", f"s-{n}"), ("configmaps", f"c-{n}")):
                    admin.post(f"/api/v1/namespaces/default/{kind}",
                               json={"metadata": {"name": name}}).raise_for_status()  # fmt: skip
                admin.post(PODS, json=_pod(f"p-{n}", node, f"s-{n}", f"c-{n}")).raise_for_status()
                admin.post(DEVICES, json={"apiVersion": "devices.kubeedge.io/v1beta1",
                           "kind": "Device", "metadata": {"name": f"d-{n}"},
                           "spec": {"nodeName": node}}).raise_for_status()  # fmt: skip
            admin.post("/api/v1/namespaces/default/secrets",
                       json={"metadata": {"name": "s-unused"}}).raise_for_status()  # fmt: skip
        token = Tokens(server.state / "tokens.json").issue("system:node:node-a")
        with server.http(token) as node_a:
            yield node_a, server.state
    finally:
        server.stop()


ROWS: list[tuple[str, str, str, Any, int]] = [
    # (what, method, path, body, code for node-a)
    ("read any Node", "GET", "/api/v1/nodes/node-b", None, 200),
    ("list Nodes", "GET", "/api/v1/nodes", None, 200),
    ("patch its own Node", "PATCH", "/api/v1/nodes/node-a", {"metadata": {"labels": {"x": "1"}}},
     200),
    ("patch another Node", "PATCH", "/api/v1/nodes/node-b", {"metadata": {"labels": {"x": "1"}}},
     403),
    ("patch its own Node status", "PATCH", "/api/v1/nodes/node-a/status", {"status": {}}, 200),
    ("patch another Node's status", "PATCH", "/api/v1/nodes/node-b/status", {"status": {}}, 403),
    ("create another Node", "POST", "/api/v1/nodes", {"metadata": {"name": "node-c"}}, 403),
    ("create a Node by generateName", "POST", "/api/v1/nodes",
     {"metadata": {"generateName": "node-"}}, 403),
    ("delete every Node", "DELETE", "/api/v1/nodes", None, 403),
    ("read its own Lease", "GET", f"{LEASES}/node-a", None, 200),
    ("read another Lease", "GET", f"{LEASES}/node-b", None, 403),
    ("list Leases", "GET", LEASES, None, 403),
    ("renew its own Lease", "PATCH", f"{LEASES}/node-a", {"spec": {"holderIdentity": "node-a"}},
     200),
    ("renew another Lease", "PATCH", f"{LEASES}/node-b", {"spec": {"holderIdentity": "node-a"}},
     403),
    ("create a Lease by generateName", "POST", LEASES, _lease("", generateName="node-a"), 403),
    ("create a Lease for another node", "POST", LEASES, _lease("node-c"), 403),
    ("create its Lease elsewhere", "POST", "/apis/coordination.k8s.io/v1/namespaces/default/leases",
     _lease("node-a"), 403),
    ("delete every Lease", "DELETE", LEASES, None, 403),
    ("delete another Lease", "DELETE", f"{LEASES}/node-b", None, 403),
    ("read its own pod", "GET", f"{PODS}/p-a", None, 200),
    ("read another node's pod", "GET", f"{PODS}/p-b", None, 403),
    ("patch its own pod's status", "PATCH", f"{PODS}/p-a/status", {"status": {"phase": "Running"}},
     200),
    ("patch another pod's status", "PATCH", f"{PODS}/p-b/status",
     {"status": {"phase": "Running"}}, 403),
    ("patch its own pod's spec", "PATCH", f"{PODS}/p-a", {"spec": {"nodeName": "node-b"}}, 403),
    ("create a pod", "POST", PODS, _pod("p-c", "node-a", "s-a", "c-a"), 403),
    ("delete another node's pod", "DELETE", f"{PODS}/p-b", None, 403),
    ("delete every pod", "DELETE", PODS, None, 403),
    ("read a Secret its pod uses", "GET", "/api/v1/namespaces/default/secrets/s-a", None, 200),
    ("read a Secret another node's pod uses", "GET", "/api/v1/namespaces/default/secrets/s-b",
     None, 403),
    ("read a Secret no pod uses", "GET", "/api/v1/namespaces/default/secrets/s-unused", None, 403),
    ("list Secrets", "GET", "/api/v1/secrets", None, 403),
    ("list a namespace's Secrets", "GET", "/api/v1/namespaces/default/secrets", None, 403),
    ("read a ConfigMap its pod uses", "GET", "/api/v1/namespaces/default/configmaps/c-a", None,
     200),
    ("read another ConfigMap", "GET", "/api/v1/namespaces/default/configmaps/c-b", None, 403),
    ("list ConfigMaps", "GET", "/api/v1/configmaps", None, 403),
    ("create a ConfigMap", "POST", "/api/v1/namespaces/default/configmaps",
     {"metadata": {"name": "x"}}, 403),
    ("read its own device", "GET", f"{DEVICES}/d-a", None, 200),
    ("read another node's device", "GET", f"{DEVICES}/d-b", None, 403),
    ("patch its own device's status", "PATCH", f"{DEVICES}/d-a/status",
     {"status": {"state": "online"}}, 200),
    ("patch another device's status", "PATCH", f"{DEVICES}/d-b/status",
     {"status": {"state": "online"}}, 403),
    ("patch its own device's spec", "PATCH", f"{DEVICES}/d-a", {"spec": {"nodeName": "node-b"}},
     403),
    ("delete its own device", "DELETE", f"{DEVICES}/d-a", None, 403),
    ("list device models", "GET", "/apis/devices.kubeedge.io/v1beta1/devicemodels", None, 200),
    ("read a namespace", "GET", "/api/v1/namespaces/default", None, 200),
    ("list namespaces", "GET", "/api/v1/namespaces", None, 403),
    ("create an event", "POST", "/api/v1/namespaces/default/events",
     {"metadata": {"name": "e1"}, "involvedObject": {"name": "p-a"}}, 201),
    ("list events", "GET", "/api/v1/events", None, 403),
    ("list deployments", "GET", "/apis/apps/v1/deployments", None, 403),
    ("list CRDs", "GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", None, 403),
]  # fmt: skip


@pytest.mark.parametrize(("what", "method", "path", "body", "code"), ROWS, ids=[r[0] for r in ROWS])
def test_node_rule(
    cluster: tuple[httpx.Client, Path], what: str, method: str, path: str, body: Any, code: int
) -> None:
    node_a, _ = cluster
    headers = MERGE if method == "PATCH" else {}
    content = None if body is None else json.dumps(body)
    response = node_a.request(method, path, content=content, headers=headers)
    assert response.status_code == code, (what, response.text[:300])
    if code == 403:
        assert response.json()["reason"] == "Forbidden"


def test_lists_of_pods_and_devices_hold_only_its_own(cluster: tuple[httpx.Client, Path]) -> None:
    node_a, _ = cluster
    for path, mine in ((PODS, "p-a"), (DEVICES, "d-a"), ("/api/v1/pods", "p-a")):
        assert [i["metadata"]["name"] for i in node_a.get(path).json()["items"]] == [mine]


def test_a_yaml_bomb_from_a_node_token_is_refused(cluster: tuple[httpx.Client, Path]) -> None:
    node_a, _ = cluster
    levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    levels += [
        f"{n}: &{n} [{','.join([f'*{p}'] * 9)}]"
        for p, n in zip("abcdefgh", "bcdefghi", strict=True)
    ]
    bomb = "metadata:\n  annotations: {x: y}\nbomb:\n" + "".join(f"  {line}\n" for line in levels)
    assert len(bomb) < 500
    for method, kind in (("PATCH", "application/apply-patch+yaml"), ("PUT", "application/yaml")):
        response = node_a.request(method, "/api/v1/nodes/node-a?fieldManager=t", content=bomb,
                                  headers={"Content-Type": kind})  # fmt: skip
        assert response.status_code == 413, response.text
        assert "expands to more than" in response.json()["message"]
    response = node_a.put("/api/v1/nodes/node-a", content=bomb,
                          headers={"Content-Type": "application/yaml"})  # fmt: skip
    assert response.status_code == 413 and "expands to more than" in response.json()["message"]
    assert "bomb" not in node_a.get("/api/v1/nodes/node-a").text
