"""Kubernetes object semantics over the store: what get, list, create, update, patch and delete
mean. uid, generation, creationTimestamp, generateName; optimistic concurrency; the status
subresource; finalizers and deletionTimestamp; managedFields. What differs by type comes from the
type (schema, merge keys, hooks); garbage collection is in `gc`, watches in `watch`, patches in
`patching`. Everything here runs on the event loop; store calls are short SQLite transactions.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from typing import Any

from cloudcore.apiserver import errors, fields
from cloudcore.apiserver.builtins import BUILTINS, CRD_NODE_ACCESS
from cloudcore.apiserver.gc import FOREGROUND, Collector
from cloudcore.apiserver.hooks import SYSTEM_NAMESPACES
from cloudcore.apiserver.listing import ListOptions, page
from cloudcore.apiserver.patch import copy_json
from cloudcore.apiserver.patching import APPLY, check_apply, patched
from cloudcore.apiserver.resources import CRD_KEY, NAMESPACE_KEY, Registry, ResourceType
from cloudcore.apiserver.store import Change, Conflict, Store
from cloudcore.apiserver.validation import validate
from cloudcore.apiserver.watch import Hub, WatchRequest, watch
from kedge.clock import now as time_now

RESOURCE_VERSION = re.compile(r"[0-9]{1,18}")  # within SQLite's (and etcd's) int64
# unknown fields pruned from the current request's object, for `Warning` headers
FIELD_WARNINGS: ContextVar[list[str] | None] = ContextVar("field_warnings", default=None)
# the current request's field manager (fieldManager, else the client's user-agent product)
FIELD_MANAGER: ContextVar[str] = ContextVar("field_manager", default="unknown")
# `?dryRun=All`: every check runs, nothing is stored and nobody hears of it
DRY_RUN: ContextVar[bool] = ContextVar("dry_run", default=False)


def dry_run(values: list[str]) -> bool:
    """`dryRun=All` (the only value Kubernetes accepts); anything else is a 400."""
    if any(value != "All" for value in values):
        raise errors.bad_request(f'dryRun: Unsupported value: {values!r}: supported values: "All"')
    return bool(values)


Obj = dict[str, Any]
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
GENERATE_TRIES = 8


def _generated(prefix: str) -> str:
    """A name from generateName: the prefix and five random characters, as Kubernetes'."""
    return prefix + "".join(secrets.choice(_NAME_CHARS) for _ in range(5))


_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
_KEPT = ("uid", "creationTimestamp", "generation", "deletionTimestamp")  # no client sets these


def _spec_part(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


class ApiService:
    def __init__(self, store: Store, clock: Callable[[], str] = time_now) -> None:
        self.store, self.clock = store, clock
        self.registry = Registry(BUILTINS, CRD_NODE_ACCESS)
        self.hub = Hub()
        self.collector = Collector(self)
        crds, _ = store.list(CRD_KEY, None)
        self.registry.load(crds)
        namespaces, _ = store.list(NAMESPACE_KEY, None)
        self.namespaces = {n["metadata"]["name"] for n in namespaces}

    def bootstrap(self) -> None:
        """The namespaces every cluster has."""
        kind = self._type(NAMESPACE_KEY)
        for name in SYSTEM_NAMESPACES:
            if name not in self.namespaces:
                self.create(kind, "", {"metadata": {"name": name}})

    def _type(self, key: str) -> ResourceType:
        kind = self.registry.by_key(key)
        assert kind is not None, key
        return kind

    @staticmethod
    def valid_version(text: str) -> bool:
        return RESOURCE_VERSION.fullmatch(text) is not None

    # reads -------------------------------------------------------------------------------------

    def get(self, kind: ResourceType, namespace: str, name: str) -> Obj:
        obj = self.store.get(kind.key, namespace, name)
        if obj is None:
            raise errors.not_found(kind, name)
        return self.served(kind, obj)

    @staticmethod
    def served(kind: ResourceType, obj: Obj) -> Obj:
        """The object as `kind`'s version shows it (CRD versions differ only in apiVersion)."""
        if kind.custom:
            obj["apiVersion"] = kind.api_version
        return obj

    def list_items(
        self, kind: ResourceType, namespace: str | None, options: ListOptions
    ) -> tuple[list[Obj], str, str]:
        """(items, resourceVersion, continue token)."""
        items, rv = self.store.list(kind.key, namespace)
        chosen, token = page(items, rv, options)
        return [self.served(kind, i) for i in chosen], str(rv), token

    def watch(self, request: WatchRequest) -> AsyncIterator[tuple[str, Obj]]:
        return watch(self, request)

    async def settle(self) -> None:
        """Wait for pending garbage collection (tests and shutdown)."""
        await self.collector.settle()

    # writes ------------------------------------------------------------------------------------

    def _check_body(self, kind: ResourceType, body: Any, namespace: str) -> Obj:
        if not isinstance(body, dict):
            raise errors.bad_request("the request body must be a JSON or YAML object")
        for field, wanted in (("kind", kind.kind), ("apiVersion", kind.api_version)):
            if body.get(field) not in (None, wanted):
                raise errors.bad_request(f"{field} {body.get(field)!r} does not match {wanted}")
        metadata = body.setdefault("metadata", {})
        if metadata is None:
            metadata = body["metadata"] = {}
        if not isinstance(metadata, dict):
            raise errors.invalid(kind, "", [("metadata", "Invalid value: must be an object")])
        if not kind.namespaced:
            metadata.pop("namespace", None)
        elif metadata.get("namespace") not in (None, namespace):
            raise errors.bad_request("the namespace of the provided object does not match the "
                                     "namespace sent on the request")  # fmt: skip
        else:
            metadata["namespace"] = namespace
        for key in ("labels", "annotations"):
            value = metadata.get(key)
            if value is not None and (
                not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values())
            ):
                raise errors.invalid(kind, str(metadata.get("name", "")),
                                     [(f"metadata.{key}", "must map to strings")])  # fmt: skip
        body["apiVersion"], body["kind"] = kind.api_version, kind.kind
        return body

    def _validated(self, kind: ResourceType, obj: Obj, strict: bool) -> Obj:
        result = validate(kind.schema, obj)
        causes = list(result.errors)
        if strict and result.unknown:
            causes += [(path, "unknown field") for path in result.unknown]
        warnings = FIELD_WARNINGS.get()
        if warnings is not None:
            warnings.extend(f'unknown field "{path}"' for path in result.unknown)
        if causes:
            raise errors.invalid(kind, str(obj["metadata"].get("name", "")), causes)
        return kind.hooks.transform(result.value)

    def _managed(self, kind: ResourceType, before: list[fields.Entry], current: Obj | None,
                 after: Obj) -> list[fields.Entry]:  # fmt: skip
        return fields.after_update(before, current, after, FIELD_MANAGER.get(), kind.api_version,
                                   self.clock(), kind.merge_keys)  # fmt: skip

    def create(self, kind: ResourceType, namespace: str, body: Any, strict: bool = False,
               managed: list[fields.Entry] | None = None) -> Obj:  # fmt: skip
        obj = self._check_body(kind, copy_json(body), namespace)
        meta = obj["metadata"]
        generated = not meta.get("name")
        if generated:
            if not meta.get("generateName"):
                required = "Required value: name or generateName is required"
                raise errors.invalid(kind, "", [("metadata.name", required)])
            meta["name"] = _generated(meta["generateName"])
        _check_name(kind, str(meta["name"]))
        if kind.namespaced and namespace not in self.namespaces:
            raise errors.not_found(self._type(NAMESPACE_KEY), namespace)
        obj = self._validated(kind, obj, strict)
        meta = obj["metadata"]
        for key in ("resourceVersion", "deletionTimestamp"):
            meta.pop(key, None)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=self.clock(), generation=1)
        kind.hooks.prepare(self, obj, created=True)
        meta["managedFields"] = managed or self._managed(kind, [], None, obj)
        name = str(meta["name"])
        if DRY_RUN.get():
            if self.store.get(kind.key, namespace, name) is not None:
                raise errors.already_exists(kind, name)
            return self.served(kind, obj)
        stored = self._insert(kind, namespace, obj, generated)
        self.after_write(kind, "ADDED", stored)
        return self.served(kind, stored)

    def _insert(self, kind: ResourceType, namespace: str, obj: Obj, generated: bool) -> Obj:
        """Store a new object; a generated name that is taken is drawn again (as Kubernetes'
        RetryGenerateName does: 27^5 names collide often within a few thousand objects)."""
        meta, tries = obj["metadata"], GENERATE_TRIES if generated else 1
        while True:
            try:
                return self.store.write(kind.key, namespace, str(meta["name"]), obj, None,
                                        create=True)  # fmt: skip
            except Conflict:
                tries -= 1
                if not tries:
                    raise errors.already_exists(kind, str(meta["name"])) from None
                meta["name"] = _generated(meta["generateName"])

    def update(self, kind: ResourceType, namespace: str, name: str, body: Any,
               subresource: str = "", strict: bool = False,
               managed: list[fields.Entry] | None = None, current: Obj | None = None
               ) -> Obj:  # fmt: skip
        """`current`: the stored object as the caller (a patch) just read it, not read again;
        the write still refuses it if its version moved meanwhile."""
        obj = self._check_body(kind, copy_json(body), namespace)
        if obj["metadata"].get("name") not in (None, name):
            raise errors.bad_request("the name of the object does not match the name on the URL")
        obj["metadata"]["name"] = name
        if current is None:
            current = self.store.get(kind.key, namespace, name)
        if current is None:
            raise errors.not_found(kind, name)
        wanted_rv = obj["metadata"].get("resourceVersion")
        if wanted_rv and str(wanted_rv) != current["metadata"]["resourceVersion"]:
            raise errors.conflict(kind, name)
        obj = self._validated(kind, obj, strict)
        merged = _merge_for_update(kind, current, obj, subresource)
        before = current["metadata"].get("managedFields") or []
        entries = managed if managed is not None else self._managed(kind, before, current, merged)
        if entries:
            merged["metadata"]["managedFields"] = entries
        else:
            merged["metadata"].pop("managedFields", None)
        return self.store_update(kind, namespace, name, current, merged)

    def store_update(
        self, kind: ResourceType, namespace: str, name: str, current: Obj, merged: Obj
    ) -> Obj:
        kind.hooks.prepare(self, merged, created=False)
        meta = merged["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            return self._remove(kind, namespace, name)
        if merged == current or DRY_RUN.get():
            return self.served(kind, merged)  # no-op updates keep the resourceVersion
        rv = int(current["metadata"]["resourceVersion"])
        try:
            stored = self.store.write(kind.key, namespace, name, merged, rv, create=False)
        except Conflict:
            raise errors.conflict(kind, name) from None
        except KeyError:
            raise errors.not_found(kind, name) from None
        self.after_write(kind, "MODIFIED", stored)
        return self.served(kind, stored)

    def patch(self, kind: ResourceType, namespace: str, name: str, content_type: str,
              patch: Any, subresource: str = "", strict: bool = False, field_manager: str = "",
              force: bool = False) -> tuple[Obj, bool]:  # fmt: skip
        """(the patched object, created): apply patches create missing objects."""
        current = self.store.get(kind.key, namespace, name)
        manager = field_manager or FIELD_MANAGER.get()
        if current is None:
            if content_type != APPLY:
                raise errors.not_found(kind, name)
            check_apply(patch)
            body = copy_json(patch)
            body.setdefault("metadata", {})["name"] = name
            applied = fields.entry(manager, "Apply", kind.api_version, self.clock(),
                                   fields.leaves(body, merge_keys=kind.merge_keys))  # fmt: skip
            return self.create(kind, namespace, body, strict, [applied]), True
        result, managed = patched(kind, current, content_type, patch, manager, force, self.clock())
        if not isinstance(result, dict):
            raise errors.bad_request("the patch does not produce an object")
        if not isinstance(result.setdefault("metadata", {}), dict):
            raise errors.invalid(kind, name, [("metadata", "Invalid value: must be an object")])
        result["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        result["metadata"]["name"] = name
        return self.update(kind, namespace, name, result, subresource, strict, managed,
                           current), False  # fmt: skip

    def delete(self, kind: ResourceType, namespace: str, name: str, propagation: str = "",
               preconditions: dict[str, Any] | None = None) -> Obj:  # fmt: skip
        current = self.store.get(kind.key, namespace, name)
        if current is None:
            raise errors.not_found(kind, name)
        meta = current["metadata"]
        for key in ("uid", "resourceVersion"):
            wanted = (preconditions or {}).get(key)
            if wanted and str(wanted) != str(meta.get(key)):
                raise errors.conflict(kind, name)
        policy = propagation or "Background"
        if policy not in ("Background", "Foreground", "Orphan"):
            raise errors.bad_request(f"unknown propagationPolicy {policy!r}")
        kind.hooks.check_delete(name)
        if DRY_RUN.get():
            return self.served(kind, current)
        if policy == "Orphan":
            self.collector.orphan(meta["uid"])
        if policy == "Foreground" and self.collector.dependents(meta["uid"]):
            finalizers = list(meta.get("finalizers") or [])
            meta["finalizers"] = (
                finalizers if FOREGROUND in finalizers else [*finalizers, FOREGROUND]
            )
        if not meta.get("finalizers"):
            return self._remove(kind, namespace, name)
        if not meta.get("deletionTimestamp"):
            meta.update(deletionTimestamp=self.clock(), deletionGracePeriodSeconds=0)
            current = self.store.write(kind.key, namespace, name, current, None, create=False)
            self.after_write(kind, "MODIFIED", current)
        if FOREGROUND in current["metadata"].get("finalizers", []):
            self.collector.collect_later(meta["uid"])
        return self.served(kind, current)

    def _remove(self, kind: ResourceType, namespace: str, name: str) -> Obj:
        try:
            removed = self.store.delete(kind.key, namespace, name)
        except KeyError:
            raise errors.not_found(kind, name) from None
        self.after_write(kind, "DELETED", removed)
        kind.hooks.removed(self, removed)
        self.collector.collect_later(removed["metadata"]["uid"])
        return self.served(kind, removed)

    def after_write(self, kind: ResourceType, change: str, obj: Obj) -> None:
        """Watchers hear of it, and the type's hooks."""
        rv = int(obj["metadata"]["resourceVersion"])
        self.hub.publish(Change(rv, kind.key, change, copy_json(obj)))
        kind.hooks.written(self, change, obj)


def _merge_for_update(kind: ResourceType, current: Obj, new: Obj, subresource: str) -> Obj:
    """What an update stores: the status subresource changes only status; the main resource
    changes everything but status (when the type has the subresource) and what no client sets."""
    if subresource == "status":
        merged = copy_json(current)
        if "status" in new:
            merged["status"] = new["status"]
        else:
            merged.pop("status", None)
        return merged
    merged = copy_json(new)
    for key in _KEPT:
        if key in current["metadata"]:
            merged["metadata"][key] = current["metadata"][key]
        else:
            merged["metadata"].pop(key, None)
    if kind.status:
        if "status" in current:
            merged["status"] = current["status"]
        else:
            merged.pop("status", None)
    if _spec_part(merged) != _spec_part(current):
        merged["metadata"]["generation"] = int(current["metadata"].get("generation", 1)) + 1
    return merged


def _check_name(kind: ResourceType, name: str) -> None:
    """Names are DNS subdomains, as Kubernetes requires of most types."""
    if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        raise errors.invalid(
            kind,
            name,
            [("metadata.name", f"Invalid value: {name!r}: a lowercase RFC 1123 subdomain must "
              "consist of lower case alphanumeric characters, '-' or '.', and must start and end "
              "with an alphanumeric character")],
        )  # fmt: skip
