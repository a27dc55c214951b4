"""Which Secrets and ConfigMaps a pod uses, as Kubernetes' Node authorizer's graph knows them:
volumes (also projected), env valueFrom, envFrom, and image pull secrets. Pure."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

Obj = dict[str, Any]


def _dicts(value: Any) -> list[Obj]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _object(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _volume_refs(volume: Obj) -> Iterator[tuple[str, str]]:
    secret, config = volume.get("secret"), volume.get("configMap")
    if isinstance(secret, dict):
        yield "/secrets", str(secret.get("secretName", ""))
    if isinstance(config, dict):
        yield "/configmaps", str(config.get("name", ""))
    projected = volume.get("projected")
    for source in _dicts(projected.get("sources") if isinstance(projected, dict) else None):
        yield from _volume_refs({"secret": _renamed(source.get("secret")),
                                 "configMap": source.get("configMap")})  # fmt: skip


def _renamed(secret: Any) -> Obj | None:
    """A projected secret names itself `name`, a volume's `secretName`."""
    return {"secretName": secret.get("name", "")} if isinstance(secret, dict) else None


def _container_refs(container: Obj) -> Iterator[tuple[str, str]]:
    for env in _dicts(container.get("env")):
        source = _object(env.get("valueFrom"))
        for field, key in (("secretKeyRef", "/secrets"), ("configMapKeyRef", "/configmaps")):
            if isinstance(source.get(field), dict):
                yield key, str(source[field].get("name", ""))
    for env_from in _dicts(container.get("envFrom")):
        for field, key in (("secretRef", "/secrets"), ("configMapRef", "/configmaps")):
            if isinstance(env_from.get(field), dict):
                yield key, str(env_from[field].get("name", ""))


def references(pod: Obj) -> set[tuple[str, str]]:
    """{(resource key, name)} of the Secrets and ConfigMaps `pod` uses."""
    spec = _object(pod.get("spec"))
    found: set[tuple[str, str]] = set()
    for volume in _dicts(spec.get("volumes")):
        found.update(_volume_refs(volume))
    for container in (*_dicts(spec.get("containers")), *_dicts(spec.get("initContainers"))):
        found.update(_container_refs(container))
    found.update(("/secrets", str(s.get("name", ""))) for s in _dicts(spec.get("imagePullSecrets")))
    return found
