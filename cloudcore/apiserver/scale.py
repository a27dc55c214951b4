"""The `scale` subresource (autoscaling/v1 Scale), as `kubectl scale` and autoscalers use it:
Deployments and ReplicaSets have it, and every custom resource whose CRD declares
`subresources.scale` (its specReplicasPath, statusReplicasPath and labelSelectorPath). Reading
gives a Scale made from the object; writing one changes only the object's replica count."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cloudcore.apiserver import errors
from cloudcore.apiserver.errors import ApiError
from cloudcore.apiserver.patch import copy_json
from cloudcore.apiserver.patching import APPLY, patched
from cloudcore.apiserver.resources import ResourceType, ScalePaths
from cloudcore.apiserver.tables import json_path

if TYPE_CHECKING:
    from cloudcore.apiserver.service import ApiService

Obj = dict[str, Any]


def _steps(path: str) -> list[str]:
    return [step for step in path.split(".") if step]


def selector_text(selector: Any) -> str:
    """A LabelSelector as Kubernetes writes it (`app=web,tier in (a,b)`)."""
    if not isinstance(selector, dict):
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, operator = expr.get("key"), expr.get("operator")
        values = ",".join(sorted(str(v) for v in expr.get("values") or []))
        forms = {"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})",
                 "Exists": str(key), "DoesNotExist": f"!{key}"}  # fmt: skip
        parts.append(forms.get(str(operator), ""))
    return ",".join(p for p in parts if p)


def scale_of(paths: ScalePaths, obj: Obj) -> Obj:
    meta = obj["metadata"]
    status: Obj = {"replicas": json_path(obj, paths.status) or 0}
    selector = json_path(obj, paths.selector) if paths.selector else selector_text(
        (obj.get("spec") or {}).get("selector"))  # fmt: skip
    if selector:
        status["selector"] = selector
    replicas = json_path(obj, paths.spec)
    return {
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                          "creationTimestamp") if k in meta},
        "spec": {"replicas": replicas if isinstance(replicas, int) else 1},
        "status": status,
    }  # fmt: skip


def _replicas(scale: Any) -> int:
    spec = scale.get("spec") if isinstance(scale, dict) else None
    replicas = (spec or {}).get("replicas", 0) if isinstance(spec, dict) else None
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise errors.bad_request("Scale.spec.replicas must be a whole number, 0 or more")
    return replicas


class Scaling:
    """The scale subresource's verbs on top of the service's own get and update."""

    def __init__(self, service: ApiService) -> None:
        self.service = service

    def _paths(self, kind: ResourceType) -> ScalePaths:
        if kind.scale is None:
            raise errors.not_found(kind, "scale")
        return kind.scale

    def get(self, kind: ResourceType, namespace: str, name: str) -> Obj:
        return scale_of(self._paths(kind), self.service.get(kind, namespace, name))

    def update(self, kind: ResourceType, namespace: str, name: str, scale: Any) -> Obj:
        paths, replicas = self._paths(kind), _replicas(scale)
        current = self.service.get(kind, namespace, name)
        wanted = ((scale.get("metadata") or {}) if isinstance(scale, dict) else {}).get(
            "resourceVersion")  # fmt: skip
        if wanted and str(wanted) != current["metadata"]["resourceVersion"]:
            raise errors.conflict(kind, name)
        obj, steps = copy_json(current), _steps(paths.spec)
        holder = obj
        for step in steps[:-1]:
            holder = holder.setdefault(step, {})
        holder[steps[-1]] = replicas
        return scale_of(paths, self.service.update(kind, namespace, name, obj))

    def patch(self, kind: ResourceType, namespace: str, name: str, content_type: str,
              patch: Any) -> Obj:  # fmt: skip
        if content_type == APPLY:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                "server-side apply is not served on scale; use a merge, JSON or strategic patch",
            )
        current = self.get(kind, namespace, name)
        result, _ = patched(kind, current, content_type, patch, "", False, "")
        return self.update(kind, namespace, name, result)
