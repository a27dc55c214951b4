"""The resource types the server serves: built-in ones and those CustomResourceDefinitions add.

A type is served at one group/version; a CRD with several served versions gives one type per
version, all stored under one key (group/plural) in the CRD's storage version.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cloudcore.apiserver.selectors import BASE_FIELDS

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str
    json_path: str
    description: str = ""
    priority: int = 0
    format: str = ""


@dataclass(frozen=True, slots=True)
class ResourceType:
    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    status: bool = False
    fields: tuple[str, ...] = BASE_FIELDS
    columns: tuple[Column, ...] = ()
    schema: Mapping[str, Any] | None = field(default=None, compare=False)
    storage_version: str = ""
    custom: bool = False

    @property
    def key(self) -> str:
        return f"{self.group}/{self.plural}"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


def _core(plural: str, kind: str, namespaced: bool = True, **more: Any) -> ResourceType:
    return ResourceType("", "v1", plural, kind.lower(), kind, namespaced, **more)


def _col(name: str, path: str, kind: str = "string", priority: int = 0) -> Column:
    return Column(name, kind, path, priority=priority)


def _loose(
    properties: dict[str, Any] | None = None, required: tuple[str, ...] = ()
) -> dict[str, Any]:
    """An object schema that checks the named fields and keeps every other one."""
    schema: dict[str, Any] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    if properties:
        schema["properties"] = properties
    if required:
        schema["required"] = list(required)
    return schema


_STRING = {"type": "string"}
_STRINGS = {"type": "object", "additionalProperties": _STRING}
_CONTAINERS = {
    "type": "array",
    "minItems": 1,
    "items": _loose({"name": _STRING, "image": _STRING}, ("name", "image")),
}
_POD_SPEC = _loose({"containers": _CONTAINERS, "nodeName": _STRING}, ("containers",))
_WORKLOAD = _loose(
    {"spec": _loose({"selector": _loose(), "template": _loose({"spec": _POD_SPEC})},
                    ("selector", "template"))},
    ("spec",),
)  # fmt: skip
# what Kubernetes refuses most visibly for the built-in types; the rest of each type is kept as sent
BUILTIN_SCHEMAS: dict[str, dict[str, Any]] = {
    "Pod": _loose({"spec": _POD_SPEC}, ("spec",)),
    "Deployment": _WORKLOAD,
    "DaemonSet": _WORKLOAD,
    "ConfigMap": _loose({"data": _STRINGS, "binaryData": _STRINGS}),
    "Secret": _loose(
        {
            "data": {
                "type": "object",
                "additionalProperties": {"type": "string", "pattern": "^[A-Za-z0-9+/]*={0,2}$"},
            },
            "stringData": _STRINGS,
            "type": _STRING,
        }
    ),  # fmt: skip
    "Lease": _loose(
        {
            "spec": _loose(
                {
                    "holderIdentity": _STRING,
                    "leaseDurationSeconds": {"type": "integer"},
                    "renewTime": _STRING,
                }
            )
        }
    ),  # fmt: skip
    "Event": _loose({"involvedObject": _loose(), "reason": _STRING, "message": _STRING}),
}


_BUILTINS: tuple[ResourceType, ...] = (
    _core(
        "namespaces",
        "Namespace",
        namespaced=False,
        short_names=("ns",),
        status=True,
        fields=(*BASE_FIELDS, "status.phase"),
        columns=(_col("Status", ".status.phase"),),
    ),
    _core(
        "nodes",
        "Node",
        namespaced=False,
        short_names=("no",),
        status=True,
        fields=(*BASE_FIELDS, "spec.unschedulable"),
        columns=(
            _col("Status", "computed:node-status"),
            _col("Roles", "computed:node-roles"),
            _col("Version", ".status.nodeInfo.kubeletVersion"),
            _col("Internal-IP", ".status.addresses[0].address", priority=1),
        ),
    ),
    _core(
        "pods",
        "Pod",
        short_names=("po",),
        categories=("all",),
        status=True,
        fields=(*BASE_FIELDS, "spec.nodeName", "status.phase", "spec.restartPolicy"),
        columns=(
            _col("Ready", "computed:pod-ready"),
            _col("Status", "computed:pod-status"),
            _col("Restarts", "computed:pod-restarts", "integer"),
            _col("IP", ".status.podIP", priority=1),
            _col("Node", ".spec.nodeName", priority=1),
        ),
    ),
    _core("configmaps", "ConfigMap", short_names=("cm",)),
    _core("secrets", "Secret", fields=(*BASE_FIELDS, "type"), columns=(_col("Type", ".type"),)),
    _core(
        "events",
        "Event",
        short_names=("ev",),
        fields=(
            *BASE_FIELDS,
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "source",
            "type",
        ),
        columns=(
            _col("Type", ".type"),
            _col("Reason", ".reason"),
            _col("Object", ".involvedObject.name"),
            _col("Message", ".message"),
        ),
    ),
    _core("serviceaccounts", "ServiceAccount", short_names=("sa",)),
    ResourceType(
        "apps",
        "v1",
        "deployments",
        "deployment",
        "Deployment",
        True,
        short_names=("deploy",),
        categories=("all",),
        status=True,
        columns=(
            _col("Ready", ".status.readyReplicas", "integer"),
            _col("Desired", ".spec.replicas", "integer"),
        ),
    ),
    ResourceType(
        "apps",
        "v1",
        "daemonsets",
        "daemonset",
        "DaemonSet",
        True,
        short_names=("ds",),
        categories=("all",),
        status=True,
        columns=(
            _col("Desired", ".status.desiredNumberScheduled", "integer"),
            _col("Ready", ".status.numberReady", "integer"),
        ),
    ),
    ResourceType("coordination.k8s.io", "v1", "leases", "lease", "Lease", True),
    ResourceType(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "customresourcedefinition",
        "CustomResourceDefinition",
        False,
        short_names=("crd", "crds"),
        status=True,
    ),
)


BUILTINS: tuple[ResourceType, ...] = tuple(
    dataclasses.replace(kind, schema=BUILTIN_SCHEMAS[kind.kind])
    if kind.kind in BUILTIN_SCHEMAS
    else kind
    for kind in _BUILTINS
)

CRD_KEY = "apiextensions.k8s.io/customresourcedefinitions"
NAMESPACE_KEY = "/namespaces"


def from_crd(crd: Mapping[str, Any]) -> list[ResourceType]:
    """The types a stored CRD serves (one per served version)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    versions = [v for v in spec.get("versions") or [] if v.get("served", True)]
    storage = next(
        (v["name"] for v in spec.get("versions") or [] if v.get("storage")),
        versions[0]["name"] if versions else "",
    )
    out = []
    for version in versions:
        columns = tuple(
            Column(
                str(c.get("name", "")),
                str(c.get("type", "string")),
                str(c.get("jsonPath", "")),
                str(c.get("description", "")),
                int(c.get("priority", 0)),
                str(c.get("format", "")),
            )
            for c in version.get("additionalPrinterColumns") or []
        )
        out.append(
            ResourceType(
                group=str(spec.get("group", "")),
                version=str(version["name"]),
                plural=str(names.get("plural", "")),
                singular=str(names.get("singular") or str(names.get("kind", "")).lower()),
                kind=str(names.get("kind", "")),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                status="status" in (version.get("subresources") or {}),
                columns=columns,
                schema=((version.get("schema") or {}).get("openAPIV3Schema")),
                storage_version=storage,
                custom=True,
            )
        )
    return out


class Registry:
    """Built-in types plus the types of the CRDs given to `load`."""

    def __init__(self) -> None:
        self._custom: dict[str, list[ResourceType]] = {}  # CRD name -> its types

    def load(self, crds: Iterable[Mapping[str, Any]]) -> None:
        self._custom = {str(c["metadata"]["name"]): from_crd(c) for c in crds}

    def set_crd(self, crd: Mapping[str, Any]) -> None:
        self._custom[str(crd["metadata"]["name"])] = from_crd(crd)

    def drop_crd(self, name: str) -> None:
        self._custom.pop(name, None)

    def all(self) -> list[ResourceType]:
        return [*BUILTINS, *(t for types in self._custom.values() for t in types)]

    def find(self, group: str, version: str, plural: str) -> ResourceType | None:
        for kind in self.all():
            if kind.group == group and kind.version == version and kind.plural == plural:
                return kind
        return None

    def by_key(self, key: str) -> ResourceType | None:
        """The storage-version type for a storage key (used by garbage collection)."""
        for kind in self.all():
            if kind.key == key and (not kind.custom or kind.version == kind.storage_version):
                return kind
        return None

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        for candidate in self.all():
            if candidate.api_version == api_version and candidate.kind == kind:
                return candidate
        return None

    def groups(self) -> dict[str, list[str]]:
        """group -> served versions (preferred first), for discovery."""
        out: dict[str, list[str]] = {}
        for kind in self.all():
            if kind.group:
                versions = out.setdefault(kind.group, [])
                if kind.version not in versions:
                    versions.append(kind.version)
        return out
