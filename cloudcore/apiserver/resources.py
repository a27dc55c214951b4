"""The resource types the server serves: built-in ones (`builtins.py`) and those
CustomResourceDefinitions add.

A type carries everything that differs between types: its schema, the columns `kubectl get`
shows (JSONPaths or computed), what a node identity may do with it (`node_access`, after
Kubernetes' Node authorizer), the merge keys of its lists for strategic merge patch and
server-side apply, and its hooks (behaviour beyond storage). A type is served at one
group/version; a CRD with several served versions gives one type per version, all stored under
one key (group/plural) in the CRD's storage version.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cloudcore.apiserver.auth import Rule
from cloudcore.apiserver.hooks import NO_HOOKS, Hooks
from cloudcore.apiserver.patch import MERGE_KEYS
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
    compute: Callable[[dict[str, Any]], Any] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class ScalePaths:
    spec: str  # ".spec.replicas"
    status: str  # ".status.replicas"
    selector: str  # a string field holding the selector; "" = made from .spec.selector


BUILTIN_SCALE = ScalePaths(".spec.replicas", ".status.replicas", "")


def scale_from_crd(declared: Any) -> ScalePaths | None:
    if not isinstance(declared, dict) or not declared.get("specReplicasPath"):
        return None
    return ScalePaths(str(declared["specReplicasPath"]), str(declared.get("statusReplicasPath")
                      or ""), str(declared.get("labelSelectorPath") or ""))  # fmt: skip


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
    node_access: Mapping[str, Rule] = field(default_factory=dict, compare=False)  # verb -> rule
    merge_keys: Mapping[str, str] = field(default_factory=lambda: MERGE_KEYS, compare=False)
    hooks: Hooks = field(default=NO_HOOKS, compare=False)
    scale: ScalePaths | None = None  # the scale subresource, where the type has one

    @property
    def key(self) -> str:
        return f"{self.group}/{self.plural}"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


CRD_KEY = "apiextensions.k8s.io/customresourcedefinitions"
NAMESPACE_KEY = "/namespaces"


def from_crd(crd: Mapping[str, Any], node_access: Mapping[str, Mapping[str, Rule]]
             ) -> list[ResourceType]:  # fmt: skip
    """The types a stored CRD serves (one per served version); `node_access` by storage key."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    versions = [v for v in spec.get("versions") or [] if v.get("served", True)]
    storage = next(
        (v["name"] for v in spec.get("versions") or [] if v.get("storage")),
        versions[0]["name"] if versions else "",
    )
    key = f"{spec.get('group', '')}/{names.get('plural', '')}"
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
                scale=scale_from_crd((version.get("subresources") or {}).get("scale")),
                columns=columns,
                schema=((version.get("schema") or {}).get("openAPIV3Schema")),
                storage_version=storage,
                custom=True,
                node_access=node_access.get(key, {}),
            )
        )
    return out


class Registry:
    """Built-in types plus the types of the CRDs given to `load`."""

    def __init__(self, builtins: Iterable[ResourceType],
                 crd_access: Mapping[str, Mapping[str, Rule]]) -> None:  # fmt: skip
        """`crd_access`: node access to the objects of known CRDs, by storage key."""
        self.builtins, self.crd_access = tuple(builtins), crd_access
        self._custom: dict[str, list[ResourceType]] = {}  # CRD name -> its types

    def load(self, crds: Iterable[Mapping[str, Any]]) -> None:
        self._custom = {str(c["metadata"]["name"]): from_crd(c, self.crd_access) for c in crds}

    def set_crd(self, crd: Mapping[str, Any]) -> None:
        self._custom[str(crd["metadata"]["name"])] = from_crd(crd, self.crd_access)

    def drop_crd(self, name: str) -> None:
        self._custom.pop(name, None)

    def all(self) -> list[ResourceType]:
        return [*self.builtins, *(t for types in self._custom.values() for t in types)]

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

    def groups(self) -> dict[str, list[str]]:
        """group -> served versions (discovery orders them by Kubernetes' priority)."""
        out: dict[str, list[str]] = {}
        for kind in self.all():
            if kind.group:
                versions = out.setdefault(kind.group, [])
                if kind.version not in versions:
                    versions.append(kind.version)
        return out
