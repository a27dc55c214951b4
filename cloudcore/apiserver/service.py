"""Kubernetes object semantics over the store: what create, update, patch, delete and watch mean.

uid, generation, creationTimestamp, generateName; optimistic concurrency; the status
subresource; finalizers and deletionTimestamp; ownerReferences garbage collection (background,
foreground, orphan); namespaces and their contents; CRDs that add types as they are stored.
Everything here runs on the event loop; store calls are short SQLite transactions.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import logging
import re
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import orjson

from cloudcore.apiserver import errors, fields
from cloudcore.apiserver.errors import ApiError
from cloudcore.apiserver.patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from cloudcore.apiserver.resources import CRD_KEY, NAMESPACE_KEY, Registry, ResourceType
from cloudcore.apiserver.selectors import (
    FieldRequirement,
    Requirement,
    fields_match,
    labels_match,
)
from cloudcore.apiserver.store import Change, Conflict, Gone, Store
from cloudcore.apiserver.validation import check_schema, validate

log = logging.getLogger("kedge.apiserver")
_T = TypeVar("_T")
RESOURCE_VERSION = re.compile(r"[0-9]{1,18}")  # within SQLite's (and etcd's) int64
# unknown fields pruned from the current request's object, for `Warning` headers
FIELD_WARNINGS: ContextVar[list[str] | None] = ContextVar("field_warnings", default=None)
# the current request's field manager (fieldManager, else the client's user-agent product)
FIELD_MANAGER: ContextVar[str] = ContextVar("field_manager", default="unknown")
Obj = dict[str, Any]
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
WATCH_QUEUE = 10_000  # events buffered per watcher before it is dropped as too slow
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"


def _copy(value: _T) -> _T:
    """A deep copy of JSON data (several times faster than copy.deepcopy)."""
    return cast(_T, orjson.loads(orjson.dumps(value)))


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(eq=False)
class Watcher:
    key: str
    queue: asyncio.Queue[Change | None] = field(default_factory=lambda: asyncio.Queue(WATCH_QUEUE))


class Hub:
    """Fan-out of changes to live watchers; a watcher that falls too far behind is closed."""

    def __init__(self) -> None:
        self._watchers: dict[str, set[Watcher]] = {}

    def subscribe(self, key: str) -> Watcher:
        watcher = Watcher(key)
        self._watchers.setdefault(key, set()).add(watcher)
        return watcher

    def unsubscribe(self, watcher: Watcher) -> None:
        self._watchers.get(watcher.key, set()).discard(watcher)

    def publish(self, change: Change) -> None:
        for watcher in list(self._watchers.get(change.resource, ())):
            try:
                watcher.queue.put_nowait(change)
            except asyncio.QueueFull:
                self.unsubscribe(watcher)
                watcher.queue = asyncio.Queue(1)
                watcher.queue.put_nowait(None)  # ends that watch; the client re-lists


@dataclass(frozen=True, slots=True)
class ListOptions:
    labels: list[Requirement] = field(default_factory=list)
    fields: list[FieldRequirement] = field(default_factory=list)
    limit: int = 0
    continue_token: str = ""


def _encode_continue(rv: int, after: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"rv": rv, "after": list(after)})).decode()


def _decode_continue(token: str) -> tuple[str, str]:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token.encode()))
        after = data["after"]
        return str(after[0]), str(after[1])
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise errors.bad_request(f"invalid continue token: {token!r}") from exc


def _spec_part(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


class ApiService:
    def __init__(self, store: Store, clock: Callable[[], str] = _now) -> None:
        self.store, self.clock = store, clock
        self.registry = Registry()
        self.hub = Hub()
        crds, _ = store.list(CRD_KEY, None)
        self.registry.load(crds)
        self._gc_tasks: set[asyncio.Task[None]] = set()
        namespaces, _ = store.list(NAMESPACE_KEY, None)
        self._namespaces = {n["metadata"]["name"] for n in namespaces}

    def bootstrap(self) -> None:
        """The namespaces every cluster has."""
        kind = self._type(NAMESPACE_KEY)
        for name in SYSTEM_NAMESPACES:
            if name not in self._namespaces:
                self.create(kind, "", {"metadata": {"name": name}})

    def _type(self, key: str) -> ResourceType:
        kind = self.registry.by_key(key)
        assert kind is not None, key
        return kind

    # reads -------------------------------------------------------------------------------------

    def get(self, kind: ResourceType, namespace: str, name: str) -> Obj:
        obj = self.store.get(kind.key, namespace, name)
        if obj is None:
            raise errors.not_found(kind, name)
        return self._served(kind, obj)

    def _served(self, kind: ResourceType, obj: Obj) -> Obj:
        """The object as `kind`'s version shows it (CRD versions differ only in apiVersion)."""
        if kind.custom:
            obj["apiVersion"] = kind.api_version
        return obj

    def list_items(
        self, kind: ResourceType, namespace: str | None, options: ListOptions
    ) -> tuple[list[Obj], str, str]:
        """(items, resourceVersion, continue token)."""
        items, rv = self.store.list(kind.key, namespace)
        if options.continue_token:
            after = _decode_continue(options.continue_token)
            items = [
                i
                for i in items
                if (i["metadata"].get("namespace", ""), i["metadata"]["name"]) > after
            ]
        chosen = [
            self._served(kind, i)
            for i in items
            if labels_match(options.labels, i["metadata"].get("labels"))
            and fields_match(options.fields, i)
        ]
        token = ""
        if options.limit and len(chosen) > options.limit:
            chosen = chosen[: options.limit]
            last = chosen[-1]["metadata"]
            token = _encode_continue(rv, (last.get("namespace", ""), last["name"]))
        return chosen, str(rv), token

    # writes ------------------------------------------------------------------------------------

    def _check_body(self, kind: ResourceType, body: Any, namespace: str) -> Obj:
        if not isinstance(body, dict):
            raise errors.bad_request("the request body must be a JSON or YAML object")
        if body.get("kind") not in (None, kind.kind):
            raise errors.bad_request(f"kind {body.get('kind')!r} does not match {kind.kind}")
        if body.get("apiVersion") not in (None, kind.api_version):
            raise errors.bad_request(
                f"apiVersion {body.get('apiVersion')!r} does not match {kind.api_version}"
            )
        metadata = body.get("metadata")
        if metadata is None:
            metadata = body["metadata"] = {}
        if not isinstance(metadata, dict):
            raise errors.invalid(kind, "", [("metadata", "Invalid value: must be an object")])
        if kind.namespaced:
            if metadata.get("namespace") not in (None, namespace):
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request"
                )
            metadata["namespace"] = namespace
        else:
            metadata.pop("namespace", None)
        for key in ("labels", "annotations"):
            value = metadata.get(key)
            if value is not None and (
                not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values())
            ):
                raise errors.invalid(
                    kind,
                    str(metadata.get("name", "")),
                    [(f"metadata.{key}", "must map to strings")],
                )
        body["apiVersion"], body["kind"] = kind.api_version, kind.kind
        return body

    def _validated(self, kind: ResourceType, obj: Obj, strict: bool) -> Obj:
        name = str(obj["metadata"].get("name", ""))
        result = validate(kind.schema, obj)
        causes = list(result.errors)
        if strict and result.unknown:
            causes += [(path, "unknown field") for path in result.unknown]
        warnings = FIELD_WARNINGS.get()
        if warnings is not None:
            warnings.extend(f'unknown field "{path}"' for path in result.unknown)
        if causes:
            raise errors.invalid(kind, name, causes)
        value: Obj = result.value
        if kind.kind == "Secret" and isinstance(value.get("stringData"), dict):
            # stringData is a write-only convenience: stored base64-encoded in data
            encoded = {
                k: base64.b64encode(str(v).encode()).decode()
                for k, v in value.pop("stringData").items()
            }
            value["data"] = {**(value.get("data") or {}), **encoded}
        return value

    def _require_namespace(self, kind: ResourceType, namespace: str) -> None:
        if kind.namespaced and namespace not in self._namespaces:
            raise errors.not_found(self._type(NAMESPACE_KEY), namespace)

    def create(
        self,
        kind: ResourceType,
        namespace: str,
        body: Any,
        strict: bool = False,
        managed: list[fields.Entry] | None = None,
    ) -> Obj:
        obj = self._check_body(kind, _copy(body), namespace)
        meta = obj["metadata"]
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                raise errors.invalid(
                    kind,
                    "",
                    [("metadata.name", "Required value: name or generateName is required")],
                )
            meta["name"] = prefix + "".join(secrets.choice(_NAME_CHARS) for _ in range(5))
        _check_name(kind, str(meta["name"]))
        self._require_namespace(kind, namespace)
        obj = self._validated(kind, obj, strict)
        meta = obj["metadata"]
        meta.pop("resourceVersion", None)
        meta.pop("deletionTimestamp", None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = self.clock()
        meta["generation"] = 1
        if kind.key == NAMESPACE_KEY:
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj["status"] = {"phase": "Active"}
        if kind.key == CRD_KEY:
            self._accept_crd(obj)
        meta["managedFields"] = managed or fields.after_update(
            [], None, obj, FIELD_MANAGER.get(), kind.api_version, self.clock()
        )
        name = str(meta["name"])
        try:
            stored = self.store.write(kind.key, namespace, name, obj, None, create=True)
        except Conflict:
            raise errors.already_exists(kind, name) from None
        self._after_write(kind, "ADDED", stored)
        return self._served(kind, stored)

    def update(
        self,
        kind: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        subresource: str = "",
        strict: bool = False,
        managed: list[fields.Entry] | None = None,
    ) -> Obj:
        obj = self._check_body(kind, _copy(body), namespace)
        if obj["metadata"].get("name") not in (None, name):
            raise errors.bad_request("the name of the object does not match the name on the URL")
        obj["metadata"]["name"] = name
        current = self.store.get(kind.key, namespace, name)
        if current is None:
            raise errors.not_found(kind, name)
        wanted_rv = obj["metadata"].get("resourceVersion")
        if wanted_rv and str(wanted_rv) != current["metadata"]["resourceVersion"]:
            raise errors.conflict(kind, name)
        obj = self._validated(kind, obj, strict)
        merged = self._merge_for_update(kind, current, obj, subresource)
        before = current["metadata"].get("managedFields") or []
        merged["metadata"]["managedFields"] = (
            managed
            if managed is not None
            else fields.after_update(
                before, current, merged, FIELD_MANAGER.get(), kind.api_version, self.clock()
            )
        )
        if not merged["metadata"]["managedFields"]:
            del merged["metadata"]["managedFields"]
        return self._store_update(kind, namespace, name, current, merged)

    def _merge_for_update(
        self, kind: ResourceType, current: Obj, new: Obj, subresource: str
    ) -> Obj:
        if subresource == "status":
            merged = _copy(current)
            if "status" in new:
                merged["status"] = new["status"]
            else:
                merged.pop("status", None)
            return merged
        merged = _copy(new)
        keep = ("uid", "creationTimestamp", "generation", "deletionTimestamp")
        for key in keep:
            if key in current["metadata"]:
                merged["metadata"][key] = current["metadata"][key]
            else:
                merged["metadata"].pop(key, None)
        if kind.status:  # the main resource does not change status, the subresource does
            if "status" in current:
                merged["status"] = current["status"]
            else:
                merged.pop("status", None)
        if _spec_part(merged) != _spec_part(current):
            merged["metadata"]["generation"] = int(current["metadata"].get("generation", 1)) + 1
        return merged

    def _store_update(
        self, kind: ResourceType, namespace: str, name: str, current: Obj, merged: Obj
    ) -> Obj:
        if kind.key == CRD_KEY:
            self._accept_crd(merged)
        meta = merged["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            return self._remove(kind, namespace, name)
        if merged == current:
            return self._served(kind, current)  # no-op updates keep the resourceVersion
        try:
            stored = self.store.write(
                kind.key,
                namespace,
                name,
                merged,
                int(current["metadata"]["resourceVersion"]),
                create=False,
            )
        except Conflict:
            raise errors.conflict(kind, name) from None
        except KeyError:
            raise errors.not_found(kind, name) from None
        self._after_write(kind, "MODIFIED", stored)
        return self._served(kind, stored)

    def patch(
        self,
        kind: ResourceType,
        namespace: str,
        name: str,
        content_type: str,
        patch: Any,
        subresource: str = "",
        strict: bool = False,
        field_manager: str = "",
        force: bool = False,
    ) -> tuple[Obj, bool]:
        """(the patched object, created): apply patches create missing objects."""
        current = self.store.get(kind.key, namespace, name)
        apply = content_type == "application/apply-patch+yaml"
        managed: list[fields.Entry] = []
        if current is None:
            if not apply:
                raise errors.not_found(kind, name)
            if not isinstance(patch, dict) or not isinstance(patch.get("metadata", {}), dict):
                raise errors.bad_request("an apply patch must be an object, its metadata too")
            body = _copy(patch)
            body.setdefault("metadata", {})["name"] = name
            applied = fields.entry(
                field_manager or FIELD_MANAGER.get(), "Apply", kind.api_version, self.clock(),
                fields.leaves(body),
            )  # fmt: skip
            return self.create(kind, namespace, body, strict, [applied]), True
        base = _copy(current)
        try:
            if content_type == "application/json-patch+json":
                patched = json_patch(base, patch)
            elif content_type == "application/merge-patch+json":
                patched = merge_patch(base, patch)
            elif content_type == "application/strategic-merge-patch+json":
                if kind.custom:
                    raise ApiError(
                        415,
                        "UnsupportedMediaType",
                        "strategic merge patch is not supported for custom resources; "
                        "use --type merge or json",
                    )
                patched = strategic_merge_patch(base, patch)
            elif apply:
                if not isinstance(patch, dict) or not isinstance(patch.get("metadata", {}), dict):
                    raise errors.bad_request("an apply patch must be an object, its metadata too")
                manager = field_manager or FIELD_MANAGER.get()
                base, managed = self._apply_ownership(kind, current, patch, manager, force)
                patched = (merge_patch if kind.custom else strategic_merge_patch)(base, patch)
            else:
                raise ApiError(
                    415, "UnsupportedMediaType", f"unsupported patch type {content_type!r}"
                )
        except PatchError as exc:
            raise ApiError(422, "Invalid", f"the patch cannot be applied: {exc}") from exc
        if not isinstance(patched, dict):
            raise errors.bad_request("the patch does not produce an object")
        patched.setdefault("metadata", {})
        if not isinstance(patched["metadata"], dict):
            raise errors.invalid(kind, name, [("metadata", "Invalid value: must be an object")])
        patched["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        patched["metadata"]["name"] = name
        return (
            self.update(
                kind, namespace, name, patched, subresource, strict, managed if apply else None
            ),
            False,
        )

    def _apply_ownership(
        self, kind: ResourceType, current: Obj, patch: Obj, manager: str, force: bool
    ) -> tuple[Obj, list[fields.Entry]]:
        """Server-side apply: refuse to change fields other managers own (409) unless forced,
        drop fields this manager applied before and no longer applies (if nobody else owns
        them), and return the object to merge into with the new managedFields."""
        applied = fields.leaves(patch)
        entries = current["metadata"].get("managedFields") or []
        mine_before: set[fields.Path] = set()
        others: list[tuple[fields.Entry, set[fields.Path]]] = []
        for existing in entries:
            paths = fields.owned(existing)
            if existing.get("manager") == manager and existing.get("operation") == "Apply":
                mine_before = paths
            else:
                others.append((existing, paths))
        changing = {p for p in applied if fields.value_at(current, p) != fields.value_at(patch, p)}
        conflicts = [
            (str(e.get("manager")), p) for e, paths in others for p in sorted(paths & changing)
        ]
        if conflicts and not force:
            lines = "\n".join(f'- conflict with "{m}": {fields.display(p)}' for m, p in conflicts)
            raise ApiError(
                409,
                "Conflict",
                f"Apply failed with {len(conflicts)} conflict(s):\n{lines}",
                {"causes": [{"reason": "FieldManagerConflict", "message": f'conflict with "{m}"',
                             "field": fields.display(p)} for m, p in conflicts]},
            )  # fmt: skip
        owned_by_others = set().union(*(paths for _, paths in others)) if others else set()
        base = _copy(current)
        for path in mine_before - applied - owned_by_others:
            fields.remove(base, path)
        managed = [
            {**e, "fieldsV1": fields.to_fields_v1(paths - changing)}
            for e, paths in others
            if paths - changing
        ]
        managed.append(fields.entry(manager, "Apply", kind.api_version, self.clock(), applied))
        return base, managed

    def delete(
        self,
        kind: ResourceType,
        namespace: str,
        name: str,
        propagation: str = "",
        preconditions: dict[str, Any] | None = None,
    ) -> Obj:
        current = self.store.get(kind.key, namespace, name)
        if current is None:
            raise errors.not_found(kind, name)
        meta = current["metadata"]
        for key in ("uid", "resourceVersion"):
            wanted = (preconditions or {}).get(key)
            if wanted and str(wanted) != str(meta.get(key)):
                raise errors.conflict(kind, name)
        policy = propagation or ("Background" if kind.key != NAMESPACE_KEY else "Background")
        if policy not in ("Background", "Foreground", "Orphan"):
            raise errors.bad_request(f"unknown propagationPolicy {policy!r}")
        if kind.key == NAMESPACE_KEY and name in SYSTEM_NAMESPACES[:2]:
            raise ApiError(403, "Forbidden", f'namespace "{name}" is a system namespace')
        if policy == "Orphan":
            self._orphan(meta["uid"])
        if policy == "Foreground" and self._dependents(meta["uid"]):
            finalizers = list(meta.get("finalizers") or [])
            if "foregroundDeletion" not in finalizers:
                finalizers.append("foregroundDeletion")
            meta["finalizers"] = finalizers
        if meta.get("finalizers"):
            if not meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = self.clock()
                meta["deletionGracePeriodSeconds"] = 0
                stored = self.store.write(kind.key, namespace, name, current, None, create=False)
                self._after_write(kind, "MODIFIED", stored)
                current = stored
            if "foregroundDeletion" in meta.get("finalizers", []):
                self._collect_later(meta["uid"])
            return self._served(kind, current)
        return self._remove(kind, namespace, name)

    def _remove(self, kind: ResourceType, namespace: str, name: str) -> Obj:
        try:
            removed = self.store.delete(kind.key, namespace, name)
        except KeyError:
            raise errors.not_found(kind, name) from None
        self._after_write(kind, "DELETED", removed)
        if kind.key == NAMESPACE_KEY:
            self._empty_namespace(name)
        if kind.key == CRD_KEY:
            self._drop_crd(removed)
        self._collect_later(removed["metadata"]["uid"])
        return self._served(kind, removed)

    def _after_write(self, kind: ResourceType, change: str, obj: Obj) -> None:
        rv = int(obj["metadata"]["resourceVersion"])
        self.hub.publish(Change(rv, kind.key, change, _copy(obj)))
        if kind.key == NAMESPACE_KEY:
            name = obj["metadata"]["name"]
            if change == "DELETED":
                self._namespaces.discard(name)
            else:
                self._namespaces.add(name)
        if kind.key == CRD_KEY:
            if change == "DELETED":
                self.registry.drop_crd(obj["metadata"]["name"])
            else:
                self.registry.set_crd(obj)

    # CRDs, namespaces, garbage collection ------------------------------------------------------

    def _accept_crd(self, crd: Obj) -> None:
        spec = crd.get("spec")
        if not isinstance(spec, dict) or not spec.get("group") or not spec.get("versions"):
            raise ApiError(
                422, "Invalid", "CustomResourceDefinition needs spec.group and spec.versions"
            )
        names = spec.get("names") or {}
        expected = f"{names.get('plural')}.{spec['group']}"
        if crd["metadata"]["name"] != expected:
            raise ApiError(422, "Invalid", f'metadata.name: Invalid value: must be "{expected}"')
        storage = [v for v in spec["versions"] if isinstance(v, dict) and v.get("storage")]
        if len(storage) != 1:
            raise ApiError(422, "Invalid", "spec.versions: exactly one version must be storage")
        problems = [
            (f"spec.versions[{n}].schema.{where}", message)
            for n, version in enumerate(spec["versions"])
            if isinstance(version, dict) and isinstance(version.get("schema"), dict)
            and "openAPIV3Schema" in version["schema"]
            for where, message in check_schema(version["schema"]["openAPIV3Schema"])
        ]  # fmt: skip
        if problems:
            details = "; ".join(f"{where}: {message}" for where, message in problems[:20])
            raise ApiError(422, "Invalid", f'CustomResourceDefinition "{expected}" is invalid: '
                           f"{details}")  # fmt: skip
        accepted = {k: v for k, v in names.items()}
        accepted.setdefault("singular", str(names.get("kind", "")).lower())
        accepted.setdefault("listKind", f"{names.get('kind')}List")
        now = self.clock()
        crd["status"] = {
            "acceptedNames": accepted,
            "storedVersions": [storage[0]["name"]],
            "conditions": [
                {"type": t, "status": "True", "lastTransitionTime": now, "reason": r, "message": m}
                for t, r, m in (
                    ("NamesAccepted", "NoConflicts", "no conflicts found"),
                    ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
                )
            ],
        }

    def _drop_crd(self, crd: Obj) -> None:
        spec = crd.get("spec") or {}
        key = f"{spec.get('group')}/{(spec.get('names') or {}).get('plural')}"
        items, _ = self.store.list(key, None)
        for item in items:
            meta = item["metadata"]
            removed = self.store.delete(key, meta.get("namespace", ""), meta["name"])
            self.hub.publish(
                Change(int(removed["metadata"]["resourceVersion"]), key, "DELETED", removed)
            )

    def _empty_namespace(self, namespace: str) -> None:
        for kind in self.registry.all():
            if not kind.namespaced or (kind.custom and kind.version != kind.storage_version):
                continue
            items, _ = self.store.list(kind.key, namespace)
            for item in items:
                removed = self.store.delete(kind.key, namespace, item["metadata"]["name"])
                self._after_write(kind, "DELETED", removed)

    def _dependents(self, uid: str) -> list[tuple[ResourceType, Obj]]:
        out = []
        for key, obj in self.store.owned_by(uid):
            kind = self.registry.by_key(key)
            if kind is not None:
                out.append((kind, obj))
        return out

    def _orphan(self, uid: str) -> None:
        for kind, obj in self._dependents(uid):
            meta = obj["metadata"]
            meta["ownerReferences"] = [r for r in meta["ownerReferences"] if r.get("uid") != uid]
            if not meta["ownerReferences"]:
                del meta["ownerReferences"]
            stored = self.store.write(
                kind.key, meta.get("namespace", ""), meta["name"], obj, None, create=False
            )
            self._after_write(kind, "MODIFIED", stored)

    def _collect_later(self, uid: str) -> None:
        """Garbage collection runs after the request answers, as Kubernetes' collector does."""
        try:
            task = asyncio.get_running_loop().create_task(self._collect(uid))
        except RuntimeError:  # no loop (start-up, tests of the pure parts): collect now
            asyncio.run(self._collect(uid))
            return
        self._gc_tasks.add(task)
        task.add_done_callback(self._gc_tasks.discard)

    async def _collect(self, uid: str) -> None:
        for kind, obj in self._dependents(uid):
            meta = obj["metadata"]
            with_others = [r for r in meta["ownerReferences"] if r.get("uid") != uid]
            if with_others and any(self._exists(r) for r in with_others):
                continue  # another owner still holds it
            try:
                self.delete(kind, meta.get("namespace", ""), meta["name"], "Background")
            except ApiError as exc:
                log.warning("garbage collection of %s failed: %s", meta["name"], exc.message)
        self._finish_foreground(uid)

    def _exists(self, ref: dict[str, Any]) -> bool:
        return self.store.by_uid(str(ref.get("uid", ""))) is not None

    def _finish_foreground(self, uid: str) -> None:
        """An owner waiting in foreground deletion goes once its dependents are gone."""
        found = self.store.by_uid(uid)
        kind = None if found is None else self.registry.by_key(found[0])
        if found is None or kind is None:
            return
        current = found[1]
        meta = current["metadata"]
        if "foregroundDeletion" in (meta.get("finalizers") or []) and not self._dependents(uid):
            merged = _copy(current)
            merged["metadata"]["finalizers"] = [
                f for f in meta["finalizers"] if f != "foregroundDeletion"
            ]
            self._store_update(kind, meta.get("namespace", ""), meta["name"], current, merged)

    async def settle(self) -> None:
        """Wait for pending garbage collection (tests and shutdown)."""
        while self._gc_tasks:
            await asyncio.gather(*list(self._gc_tasks))

    # watch -------------------------------------------------------------------------------------

    async def watch(
        self,
        kind: ResourceType,
        namespace: str | None,
        options: ListOptions,
        resource_version: str,
        bookmarks: bool,
        seconds: float,
        initial_events: bool = False,
    ) -> AsyncIterator[tuple[str, Obj]]:
        """(event type, object) pairs: ERROR with a 410 Status when the version is too old.

        With `initial_events` (sendInitialEvents, the watch-list protocol) the current state comes
        first as ADDED events and a BOOKMARK marks its end."""
        watcher = self.hub.subscribe(kind.key)
        try:
            if resource_version in ("", "0") or initial_events:
                items, rv, _ = self.list_items(
                    kind, namespace, ListOptions(options.labels, options.fields)
                )
                last = int(rv)
                for item in items:
                    yield "ADDED", item
                if initial_events and bookmarks:
                    yield "BOOKMARK", self._bookmark(kind, last)
            else:
                if not RESOURCE_VERSION.fullmatch(resource_version):
                    raise errors.bad_request(f"invalid resourceVersion {resource_version!r}")
                last = int(resource_version)
                try:
                    backlog = list(self.store.changes_since(last, kind.key))
                except Gone as exc:
                    yield "ERROR", errors.gone(str(exc)).status()
                    return
                for change in backlog:
                    last = change.rv
                    if self._wanted(change.object, namespace, options):
                        yield change.type, self._served(kind, change.object)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + seconds
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return
                try:
                    async with asyncio.timeout(min(remaining, 30.0) if bookmarks else remaining):
                        live = await watcher.queue.get()
                except TimeoutError:
                    if bookmarks and loop.time() < deadline:
                        yield "BOOKMARK", self._bookmark(kind, self.store.rv)
                    continue
                if live is None:
                    return  # too slow: closed, the client re-lists
                if live.rv <= last:
                    continue  # already sent from the backlog
                last = live.rv
                if self._wanted(live.object, namespace, options):
                    yield live.type, self._served(kind, _copy(live.object))
        finally:
            self.hub.unsubscribe(watcher)

    @staticmethod
    def _wanted(obj: Obj, namespace: str | None, options: ListOptions) -> bool:
        meta = obj["metadata"]
        return (
            (namespace is None or meta.get("namespace", "") == namespace)
            and labels_match(options.labels, meta.get("labels"))
            and fields_match(options.fields, obj)
        )

    @staticmethod
    def _bookmark(kind: ResourceType, rv: int) -> Obj:
        return {
            "kind": kind.kind,
            "apiVersion": kind.api_version,
            "metadata": {
                "resourceVersion": str(rv),
                "annotations": {"k8s.io/initial-events-end": "true"},
            },
        }


_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")


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
