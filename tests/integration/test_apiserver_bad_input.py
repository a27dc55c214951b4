"""Hostile requests to `kedge apiserver` are answered 4xx with a reason, store nothing, and never
hang: YAML bombs, deep nesting, bad apply patches, unbounded watch parameters, broken CRDs."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from harness.apiserver import ApiServerProcess

CM = "/api/v1/namespaces/default/configmaps"
YAML = {"Content-Type": "application/yaml"}


@pytest.fixture
def http(apiserver: ApiServerProcess) -> Iterator[httpx.Client]:
    with apiserver.http() as client:
        yield client


def _bomb(name: str, levels: int = 9) -> str:
    """A few hundred bytes that expand to 9**levels strings: the "billion laughs"."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{n}: &a{n} [{','.join([f'*a{n - 1}'] * 9)}]" for n in range(1, levels)]
    body = "".join(f"  {line}\n" for line in lines)
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\nlaughs:\n{body}"


def test_a_yaml_bomb_is_refused_quickly_and_nothing_is_stored(http: httpx.Client) -> None:
    bomb = _bomb("bomb")
    assert len(bomb) < 600  # 9**9 strings once expanded
    started = time.monotonic()
    response = http.post(CM, content=bomb, headers=YAML)
    assert response.status_code == 413, response.text
    assert response.json()["message"] == "the body expands to more than 3 MiB"
    assert time.monotonic() - started < 2
    assert http.get(f"{CM}/bomb").status_code == 404
    assert http.post(CM, content=_bomb("small", 2), headers=YAML).status_code == 201  # still fine


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("a: " + "[" * 1200 + "]" * 1200, "nests deeper than 128 levels"),
        ("x: &a [*a]", "refers to itself"),
        ("a: [" + ",".join(["*b"] * 1001) + "]\nb: &b 1", "aliases"),  # undefined anchors too
    ],
)
def test_bodies_past_their_bounds_are_400(http: httpx.Client, body: str, fragment: str) -> None:
    response = http.post(CM, content=body, headers=YAML)
    assert response.status_code == 400, response.text


def test_deep_json_is_400(http: httpx.Client) -> None:
    deep = '{"metadata": {"name": "deep"}, "x": ' + "[" * 200 + "]" * 200 + "}"
    response = http.post(CM, content=deep, headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "nests deeper" in response.json()["message"]


def test_an_apply_patch_with_bad_metadata_is_400(http: httpx.Client) -> None:
    for name in ("absent", "present"):
        if name == "present":
            assert http.post(CM, json={"metadata": {"name": name}}).status_code == 201
        response = http.patch(f"{CM}/{name}?fieldManager=t", content=b'{"metadata": "x"}',
                              headers={"Content-Type": "application/apply-patch+yaml"})  # fmt: skip
        assert response.status_code == 400, response.text


@pytest.mark.parametrize(
    "query",
    [
        "resourceVersion=99999999999999999999",
        "resourceVersion=-5",
        "timeoutSeconds=inf",
        "timeoutSeconds=nan",
        "timeoutSeconds=1e308",
        "timeoutSeconds=-1",
    ],
)
def test_unbounded_watch_parameters_are_400_before_the_stream(
    http: httpx.Client, query: str
) -> None:
    response = http.get(f"/api/v1/configmaps?watch=1&{query}", timeout=5)
    assert response.status_code == 400, response.text


def test_a_watch_asking_for_a_day_is_capped(http: httpx.Client) -> None:
    with http.stream("GET", "/api/v1/configmaps?watch=1&timeoutSeconds=86400", timeout=5) as resp:
        assert resp.status_code == 200  # accepted, and the server ends it within its cap


@pytest.mark.parametrize(
    ("keyword", "fragment"),
    [
        ({"type": "string", "pattern": "([a-z"}, "pattern"),
        ({"type": "integer", "minimum": "x"}, "minimum"),
        ({"type": "strung"}, "type"),
        ({"type": "string", "maxLength": -1}, "maxLength"),
        ({"type": "array", "items": "nope"}, "items"),
    ],
)
def test_a_crd_with_a_broken_schema_is_refused_at_create(
    http: httpx.Client, keyword: dict[str, object], fragment: str
) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.bad.io"},
        "spec": {"group": "bad.io", "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                     "openAPIV3Schema": {"type": "object", "properties": {"field": keyword}}}}]},
    }  # fmt: skip
    response = http.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd)
    assert response.status_code == 422 and fragment in response.json()["message"], response.text
    assert (
        http.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.bad.io")
        .status_code == 404
    )  # fmt: skip
