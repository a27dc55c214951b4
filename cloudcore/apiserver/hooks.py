"""What a resource type does beyond plain storage, carried by its ResourceType: namespaces get
their finalizer and phase and take their contents with them, CRDs are checked and add types,
Secrets store `stringData` base64-encoded in `data`. Types without behaviour use `Hooks()`.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from cloudcore.apiserver.crds import accept_crd
from cloudcore.apiserver.errors import ApiError

if TYPE_CHECKING:
    from cloudcore.apiserver.service import ApiService

Obj = dict[str, Any]
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class Hooks:
    """The default: nothing beyond storage."""

    def transform(self, obj: Obj) -> Obj:
        """After validation, before anything else: the object as it is stored."""
        return obj

    def prepare(self, api: ApiService, obj: Obj, created: bool) -> None:
        """Before each write of `obj` (ApiError refuses it)."""

    def written(self, api: ApiService, change: str, obj: Obj) -> None:
        """After `obj` was stored (ADDED, MODIFIED) or removed (DELETED)."""

    def check_delete(self, name: str) -> None:
        """Before a delete (ApiError refuses it)."""

    def removed(self, api: ApiService, obj: Obj) -> None:
        """After `obj` is gone for good (what it held goes too)."""


class NamespaceHooks(Hooks):
    def prepare(self, api: ApiService, obj: Obj, created: bool) -> None:
        if created:
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj["status"] = {"phase": "Active"}

    def written(self, api: ApiService, change: str, obj: Obj) -> None:
        name = obj["metadata"]["name"]
        (api.namespaces.discard if change == "DELETED" else api.namespaces.add)(name)

    def check_delete(self, name: str) -> None:
        if name in SYSTEM_NAMESPACES[:2]:
            raise ApiError(403, "Forbidden", f'namespace "{name}" is a system namespace')

    def removed(self, api: ApiService, obj: Obj) -> None:
        api.collector.empty_namespace(obj["metadata"]["name"])


class CrdHooks(Hooks):
    def prepare(self, api: ApiService, obj: Obj, created: bool) -> None:
        accept_crd(obj, api.clock())

    def written(self, api: ApiService, change: str, obj: Obj) -> None:
        if change == "DELETED":
            api.registry.drop_crd(obj["metadata"]["name"])
        else:
            api.registry.set_crd(obj)

    def removed(self, api: ApiService, obj: Obj) -> None:
        api.collector.drop_instances(obj)


class SecretHooks(Hooks):
    def transform(self, obj: Obj) -> Obj:
        """stringData is a write-only convenience: stored base64-encoded in data."""
        if isinstance(obj.get("stringData"), dict):
            encoded = {k: base64.b64encode(str(v).encode()).decode()
                       for k, v in obj.pop("stringData").items()}  # fmt: skip
            obj["data"] = {**(obj.get("data") or {}), **encoded}
        return obj


NO_HOOKS = Hooks()
