"""Discovery documents (/api, /apis, resource lists), /version and the OpenAPI v3 documents.

Computed from the registry on every request, so a CRD is discoverable as soon as it is stored.
The OpenAPI documents carry what kubectl needs: per type a PATCH operation tagged with its
group/version/kind and a `fieldValidation` parameter (server-side validation), and the CRDs'
schemas under components, for `kubectl explain`.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson

from cloudcore.apiserver.resources import ALL_VERBS, Registry, ResourceType

VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-kedge",
    "gitCommit": "kedge",
    "gitTreeState": "clean",
    "buildDate": "2026-11-23T00:00:00Z",
    "goVersion": "python",
    "compiler": "cpython",
    "platform": "linux/amd64",
}


def api_versions() -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
    }


_KUBE_VERSION = re.compile(r"^v([1-9][0-9]*)(?:(alpha|beta)([1-9][0-9]*))?\Z")
_STABILITY = {None: 2, "beta": 1, "alpha": 0}


def version_priority(version: str) -> tuple[int, int, int, int, str]:
    """Sort key, highest priority first, as Kubernetes orders a group's versions: GA over beta
    over alpha, then the higher major, then the higher minor; versions that do not look like
    Kubernetes versions come last, alphabetically (apimachinery's CompareKubeAwareVersionStrings).
    """
    match = _KUBE_VERSION.match(version)
    if match is None:
        return (1, 0, 0, 0, version)
    major, stability, minor = match.groups()
    return (0, -_STABILITY[stability], -int(major), -int(minor or 0), "")


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    ordered = sorted(versions, key=version_priority)
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in ordered]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def api_groups(registry: Registry) -> dict[str, Any]:
    groups = [_group(name, versions) for name, versions in sorted(registry.groups().items())]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(registry: Registry, name: str) -> dict[str, Any] | None:
    """`GET /apis/<group>`: the group's versions, preferred first (an APIGroup)."""
    versions = registry.groups().get(name)
    if not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, versions)}


def _resource(kind: ResourceType) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": kind.plural,
        "singularName": kind.singular,
        "namespaced": kind.namespaced,
        "kind": kind.kind,
        "verbs": list(ALL_VERBS),
    }
    if kind.short_names:
        entry["shortNames"] = list(kind.short_names)
    if kind.categories:
        entry["categories"] = list(kind.categories)
    return entry


def resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    kinds = [k for k in registry.all() if k.group == group and k.version == version]
    if not kinds:
        return None
    resources = []
    for kind in kinds:
        resources.append(_resource(kind))
        if kind.status:
            resources.append(
                {
                    "name": f"{kind.plural}/status",
                    "singularName": "",
                    "namespaced": kind.namespaced,
                    "kind": kind.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
        if kind.scale is not None:
            resources.append({"name": f"{kind.plural}/scale", "singularName": "",
                              "namespaced": kind.namespaced, "group": "autoscaling",
                              "version": "v1", "kind": "Scale",
                              "verbs": ["get", "patch", "update"]})  # fmt: skip
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _schema_name(kind: ResourceType) -> str:
    reversed_group = ".".join(reversed(kind.group.split("."))) if kind.group else "io.k8s.api.core"
    return f"{reversed_group}.{kind.version}.{kind.kind}"


def openapi_document(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    kinds = [k for k in registry.all() if k.group == group and k.version == version]
    if not kinds:
        return None
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for kind in kinds:
        gvk = {"group": kind.group, "version": kind.version, "kind": kind.kind}
        prefix = f"/{_gv_path(group, version)}"
        item = (
            f"{prefix}/namespaces/{{namespace}}/{kind.plural}/{{name}}"
            if kind.namespaced
            else f"{prefix}/{kind.plural}/{{name}}"
        )
        name = _schema_name(kind)
        ref = {"$ref": f"#/components/schemas/{name}"}
        body = {"content": {"application/json": {"schema": ref}}}
        paths[item] = {
            "get": {"responses": {"200": body}, "x-kubernetes-group-version-kind": gvk},
            "patch": {
                "parameters": [
                    {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
                    {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
                ],
                "requestBody": {
                    "content": {"application/merge-patch+json": {"schema": {"type": "object"}}}
                },
                "responses": {"200": body},
                "x-kubernetes-group-version-kind": gvk,
            },
        }
        schema: dict[str, Any] = dict(kind.schema) if kind.schema else {"type": "object"}
        schema["x-kubernetes-group-version-kind"] = [gvk]
        schemas[name] = schema
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": VERSION["gitVersion"]},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def openapi_index(registry: Registry) -> dict[str, Any]:
    gvs = {(k.group, k.version) for k in registry.all()}
    paths = {}
    for group, version in sorted(gvs):
        document = openapi_document(registry, group, version)
        digest = hashlib.sha256(orjson.dumps(document)).hexdigest()[:32].upper()
        path = _gv_path(group, version)
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return {"paths": paths}
