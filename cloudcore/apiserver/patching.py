"""PATCH by content type: JSON patch, merge patch, strategic merge patch (built-in types), and
server-side apply with field ownership (conflicts with other managers refused unless forced)."""

from __future__ import annotations

from typing import Any

from cloudcore.apiserver import errors, fields
from cloudcore.apiserver.errors import ApiError
from cloudcore.apiserver.patch import (
    PatchError,
    copy_json,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)
from cloudcore.apiserver.resources import ResourceType

Obj = dict[str, Any]
APPLY = "application/apply-patch+yaml"


def check_apply(patch: Any) -> None:
    if not isinstance(patch, dict) or not isinstance(patch.get("metadata", {}), dict):
        raise errors.bad_request("an apply patch must be an object, its metadata too")


def patched(kind: ResourceType, current: Obj, content_type: str, patch: Any, manager: str,
            force: bool, now: str) -> tuple[Any, list[fields.Entry] | None]:  # fmt: skip
    """The object `patch` makes of (a copy of) `current`, and for an apply its managedFields."""
    base = copy_json(current)
    try:
        if content_type == "application/json-patch+json":
            return json_patch(base, patch), None
        if content_type == "application/merge-patch+json":
            return merge_patch(base, patch), None
        if content_type == "application/strategic-merge-patch+json":
            if kind.custom:
                raise ApiError(415, "UnsupportedMediaType", "strategic merge patch is not supported"
                               " for custom resources; use --type merge or json")  # fmt: skip
            return strategic_merge_patch(base, patch, kind.merge_keys), None
        if content_type == APPLY:
            check_apply(patch)
            base, managed = _ownership(kind, current, patch, manager, force, now)
            if kind.custom:
                return merge_patch(base, patch), managed
            return strategic_merge_patch(base, patch, kind.merge_keys), managed
    except PatchError as exc:
        raise ApiError(422, "Invalid", f"the patch cannot be applied: {exc}") from exc
    raise ApiError(415, "UnsupportedMediaType", f"unsupported patch type {content_type!r}")


def _ownership(kind: ResourceType, current: Obj, patch: Obj, manager: str, force: bool, now: str
               ) -> tuple[Obj, list[fields.Entry]]:  # fmt: skip
    """Server-side apply: refuse to change fields other managers own (409) unless forced,
    drop fields this manager applied before and no longer applies (if nobody else owns
    them), and return the object to merge into with the new managedFields."""
    applied = fields.leaves(patch, merge_keys=kind.merge_keys)
    mine_before: set[fields.Path] = set()
    others: list[tuple[fields.Entry, set[fields.Path]]] = []
    for existing in current["metadata"].get("managedFields") or []:
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
            409, "Conflict", f"Apply failed with {len(conflicts)} conflict(s):\n{lines}",
            {"causes": [{"reason": "FieldManagerConflict", "message": f'conflict with "{m}"',
                         "field": fields.display(p)} for m, p in conflicts]},
        )  # fmt: skip
    owned_by_others = set().union(*(paths for _, paths in others)) if others else set()
    base = copy_json(current)
    for path in mine_before - applied - owned_by_others:
        fields.remove(base, path)
    managed = [{**e, "fieldsV1": fields.to_fields_v1(paths - changing)}
               for e, paths in others if paths - changing]  # fmt: skip
    managed.append(fields.entry(manager, "Apply", kind.api_version, now, applied))
    return base, managed
