"""CustomResourceDefinitions: what makes one acceptable, and the status an accepted one gets."""

from __future__ import annotations

from typing import Any

from cloudcore.apiserver.errors import ApiError
from cloudcore.apiserver.validation import check_schema

Obj = dict[str, Any]


def accept_crd(crd: Obj, now: str) -> None:
    """Refuse a CRD Kubernetes would refuse (422); give an accepted one its status."""
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
    crd["status"] = _status(names, storage[0]["name"], now)


def _status(names: dict[str, Any], storage: str, now: str) -> Obj:
    accepted = dict(names)
    accepted.setdefault("singular", str(names.get("kind", "")).lower())
    accepted.setdefault("listKind", f"{names.get('kind')}List")
    return {
        "acceptedNames": accepted,
        "storedVersions": [storage],
        "conditions": [
            {"type": t, "status": "True", "lastTransitionTime": now, "reason": r, "message": m}
            for t, r, m in (
                ("NamesAccepted", "NoConflicts", "no conflicts found"),
                ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
            )
        ],
    }


def instances_key(crd: Obj) -> str:
    """The storage key of a CRD's objects (group/plural)."""
    spec = crd.get("spec") or {}
    return f"{spec.get('group')}/{(spec.get('names') or {}).get('plural')}"
