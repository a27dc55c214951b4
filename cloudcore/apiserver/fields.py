"""Field ownership for server-side apply: managedFields in Kubernetes' FieldsV1 form. Pure.

A field set is a set of paths; a path step is `f:<key>` for an object key or `k:<json>` for a
list item identified by its merge key (lists of objects whose items carry `name`, or the key
`MERGE_KEYS` names). Other lists are atomic: one leaf, as Kubernetes treats them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from cloudcore.apiserver.patch import MERGE_KEYS

Path = tuple[str, ...]
IGNORED = frozenset(
    {
        ("f:apiVersion",),
        ("f:kind",),
        ("f:metadata", "f:name"),
        ("f:metadata", "f:namespace"),
        ("f:metadata", "f:resourceVersion"),
        ("f:metadata", "f:uid"),
        ("f:metadata", "f:generation"),
        ("f:metadata", "f:creationTimestamp"),
        ("f:metadata", "f:managedFields"),
        ("f:metadata", "f:deletionTimestamp"),
    }
)


ABSENT = object()  # value_at's answer for a path that is not there


def _item_key(field: str, item: Any, merge_keys: Mapping[str, str]) -> str | None:
    if not isinstance(item, Mapping):
        return None
    key = merge_keys.get(field, "name")
    if key in item:
        return "k:" + json.dumps({key: item[key]}, separators=(",", ":"))
    return None


def leaves(
    obj: Any, prefix: Path = (), field: str = "", merge_keys: Mapping[str, str] = MERGE_KEYS
) -> set[Path]:
    """The leaf paths of `obj` (scalars, atomic lists, empty objects); list items by the key
    `merge_keys` names for their field (else `name`)."""
    if isinstance(obj, Mapping):
        if not obj and prefix:
            return {prefix}
        out: set[Path] = set()
        for key, value in obj.items():
            out |= leaves(value, (*prefix, f"f:{key}"), str(key), merge_keys)
        return {p for p in out if p not in IGNORED and p[:2] not in IGNORED}
    if isinstance(obj, list) and obj and all(_item_key(field, i, merge_keys) for i in obj):
        out = set()
        for item in obj:
            step = _item_key(field, item, merge_keys)
            assert step is not None
            out |= leaves(item, (*prefix, step), field, merge_keys)
        return out
    return {prefix}


def value_at(obj: Any, path: Path) -> Any:
    """The value at a path, or a marker when it is absent."""
    for step in path:
        if step.startswith("f:") and isinstance(obj, Mapping):
            if step[2:] not in obj:
                return ABSENT
            obj = obj[step[2:]]
        elif step.startswith("k:") and isinstance(obj, list):
            wanted = json.loads(step[2:])
            obj = next(
                (
                    i
                    for i in obj
                    if isinstance(i, Mapping) and all(i.get(k) == v for k, v in wanted.items())
                ),
                ABSENT,
            )
            if obj is ABSENT:
                return ABSENT
        else:
            return ABSENT
    return obj


def remove(obj: dict[str, Any], path: Path) -> None:
    """Delete the field at `path` (and list items whose key is all that is left)."""
    parent: Any = obj
    for step in path[:-1]:
        parent = value_at(parent, (step,))
        if parent is ABSENT:
            return
    last = path[-1]
    if last.startswith("f:") and isinstance(parent, dict):
        parent.pop(last[2:], None)
    elif last.startswith("k:") and isinstance(parent, list):
        wanted = json.loads(last[2:])
        parent[:] = [
            i
            for i in parent
            if not (isinstance(i, Mapping) and all(i.get(k) == v for k, v in wanted.items()))
        ]


def to_fields_v1(paths: Iterable[Path]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for step in path:
            node = node.setdefault(step, {})
            if step.startswith("k:"):
                node.setdefault(".", {})  # the list item itself is owned too
    return tree


def from_fields_v1(tree: Mapping[str, Any], prefix: Path = ()) -> set[Path]:
    out: set[Path] = set()
    for step, sub in tree.items():
        if step == ".":
            continue
        path = (*prefix, step)
        children = {k: v for k, v in (sub or {}).items() if k != "."}
        out |= from_fields_v1(children, path) if children else {path}
    return out


def display(path: Path) -> str:
    """`.spec.containers[name="c"].image`, as Kubernetes words conflicts."""
    out = ""
    for step in path:
        if step.startswith("f:"):
            out += "." + step[2:]
        else:
            key, value = next(iter(json.loads(step[2:]).items()))
            out += f"[{key}={json.dumps(value)}]"
    return out


Entry = dict[str, Any]


def owned(entry: Mapping[str, Any]) -> set[Path]:
    return from_fields_v1(entry.get("fieldsV1") or {})


def entry(manager: str, operation: str, api_version: str, now: str, paths: set[Path]) -> Entry:
    return {
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": now,
        "fieldsType": "FieldsV1",
        "fieldsV1": to_fields_v1(paths),
    }


def after_update(
    entries: list[Entry],
    before: Any,
    after: Any,
    manager: str,
    api_version: str,
    now: str,
    merge_keys: Mapping[str, str] = MERGE_KEYS,
) -> list[Entry]:
    """managedFields after a non-apply write: changed fields move to `manager` (Update)."""
    changed = {
        p for p in leaves(after, merge_keys=merge_keys)
        if before is None or value_at(before, p) != value_at(after, p)
    }  # fmt: skip
    if not changed and before is not None:
        return entries
    out, mine = [], set(changed)
    for existing in entries:
        paths = {
            p for p in owned(existing) if p not in changed and value_at(after, p) is not ABSENT
        }
        if existing.get("manager") == manager and existing.get("operation") == "Update":
            mine |= paths
        elif paths:
            out.append({**existing, "fieldsV1": to_fields_v1(paths)})
    out.append(entry(manager, "Update", api_version, now, mine))
    return out
