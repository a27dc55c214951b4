"""Garbage collection as Kubernetes' collector does it, after the request that caused it has
answered: dependents of a deleted owner go (background), lose the reference (orphan), or hold
the owner until they are gone (foreground); a namespace takes its objects with it; a CRD its
instances."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from cloudcore.apiserver.crds import instances_key
from cloudcore.apiserver.errors import ApiError
from cloudcore.apiserver.patch import copy_json
from cloudcore.apiserver.resources import ResourceType
from cloudcore.apiserver.store import Change

if TYPE_CHECKING:
    from cloudcore.apiserver.service import ApiService

log = logging.getLogger("kedge.apiserver")
Obj = dict[str, Any]
FOREGROUND = "foregroundDeletion"


class Collector:
    def __init__(self, api: ApiService) -> None:
        self.api, self.store = api, api.store
        self._tasks: set[asyncio.Task[None]] = set()

    def dependents(self, uid: str) -> list[tuple[ResourceType, Obj]]:
        out = []
        for key, obj in self.store.owned_by(uid):
            kind = self.api.registry.by_key(key)
            if kind is not None:
                out.append((kind, obj))
        return out

    def orphan(self, uid: str) -> None:
        """Dependents lose their reference to `uid` and stay."""
        for kind, obj in self.dependents(uid):
            meta = obj["metadata"]
            meta["ownerReferences"] = [r for r in meta["ownerReferences"] if r.get("uid") != uid]
            if not meta["ownerReferences"]:
                del meta["ownerReferences"]
            stored = self.store.write(
                kind.key, meta.get("namespace", ""), meta["name"], obj, None, create=False
            )
            self.api.after_write(kind, "MODIFIED", stored)

    def collect_later(self, uid: str) -> None:
        """Collect `uid`'s dependents once the current request has answered."""
        try:
            task = asyncio.get_running_loop().create_task(self._collect(uid))
        except RuntimeError:  # no loop (start-up, tests of the pure parts): collect now
            asyncio.run(self._collect(uid))
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _collect(self, uid: str) -> None:
        for kind, obj in self.dependents(uid):
            meta = obj["metadata"]
            with_others = [r for r in meta["ownerReferences"] if r.get("uid") != uid]
            if with_others and any(self._exists(r) for r in with_others):
                continue  # another owner still holds it
            try:
                self.api.delete(kind, meta.get("namespace", ""), meta["name"], "Background")
            except ApiError as exc:
                log.warning("garbage collection of %s failed: %s", meta["name"], exc.message)
        self._finish_foreground(uid)

    def _exists(self, ref: dict[str, Any]) -> bool:
        return self.store.by_uid(str(ref.get("uid", ""))) is not None

    def _finish_foreground(self, uid: str) -> None:
        """An owner waiting in foreground deletion goes once its dependents are gone."""
        found = self.store.by_uid(uid)
        kind = None if found is None else self.api.registry.by_key(found[0])
        if found is None or kind is None:
            return
        current = found[1]
        meta = current["metadata"]
        if FOREGROUND in (meta.get("finalizers") or []) and not self.dependents(uid):
            merged = copy_json(current)
            merged["metadata"]["finalizers"] = [f for f in meta["finalizers"] if f != FOREGROUND]
            self.api.store_update(kind, meta.get("namespace", ""), meta["name"], current, merged)

    def empty_namespace(self, namespace: str) -> None:
        for kind in self.api.registry.all():
            if not kind.namespaced or (kind.custom and kind.version != kind.storage_version):
                continue
            items, _ = self.store.list(kind.key, namespace)
            for item in items:
                removed = self.store.delete(kind.key, namespace, item["metadata"]["name"])
                self.api.after_write(kind, "DELETED", removed)

    def drop_instances(self, crd: Obj) -> None:
        """A deleted CRD's objects go with it."""
        key = instances_key(crd)
        items, _ = self.store.list(key, None)
        for item in items:
            meta = item["metadata"]
            removed = self.store.delete(key, meta.get("namespace", ""), meta["name"])
            rv = int(removed["metadata"]["resourceVersion"])
            self.api.hub.publish(Change(rv, key, "DELETED", removed))

    async def settle(self) -> None:
        """Wait for pending collection (tests and shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))
