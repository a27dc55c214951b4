"""A Pod object -> what to run for each container: argv, environment, volumes, probes.

Pure: configmaps and secrets come through `Lookup`. Errors say which field is wrong and why;
the runtime shows them as the container's waiting reason (`ErrImagePull` for images,
`CreateContainerConfigError` for everything else), as kubelet does.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from edgecore.edged.images import ImageError, resolve

Obj = dict[str, Any]
Lookup = Callable[[str, str, str], Obj | None]  # (kind "configmap"/"secret", ns, name)
_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
DEFAULT_GRACE = 30


class PodConfigError(ValueError):
    """The pod's spec cannot be run as given."""


@dataclass(frozen=True, slots=True)
class Probe:
    action: str  # exec, http, tcp
    command: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    port: int = 0
    path: str = "/"
    scheme: str = "http"
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    failures: int = 3
    successes: int = 1


@dataclass(frozen=True, slots=True)
class Mount:
    volume: str
    path: str  # mountPath inside the "container"
    sub_path: str = ""


@dataclass(frozen=True, slots=True)
class ContainerPlan:
    name: str
    image: str
    argv: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    mounts: tuple[Mount, ...] = ()
    working_dir: str = ""
    liveness: Probe | None = None
    readiness: Probe | None = None
    error: tuple[str, str] | None = None  # (reason, message): cannot be started
    # as the pod gives them (a container runtime applies the image's entrypoint and cmd)
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    binds: tuple[tuple[str, str], ...] = ()  # (path in the container, path on the node)
    resources: Mapping[str, Any] = field(default_factory=dict)  # the container's resources
    pull_policy: str = "IfNotPresent"  # Always, IfNotPresent, Never (a container runtime's)


def _items(obj: Any, what: str) -> list[Obj]:
    if obj is None:
        return []
    if not isinstance(obj, list) or not all(isinstance(i, dict) for i in obj):
        raise PodConfigError(f"{what} must be a list of objects")
    return obj


def _strings(obj: Any, what: str) -> list[str]:
    if obj is None:
        return []
    if not isinstance(obj, list) or not all(isinstance(i, str) for i in obj):
        raise PodConfigError(f"{what} must be a list of strings")
    return obj


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: unknown references stay as written, `$$` is `$`."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _VAR.sub(one, text)


def config_data(kind: str, obj: Obj) -> dict[str, bytes]:
    """A ConfigMap's or Secret's keys as bytes (Secret data is base64, stringData plain)."""
    out: dict[str, bytes] = {}
    if kind == "secret":
        for key, value in (obj.get("data") or {}).items():
            out[key] = base64.b64decode(str(value))
        for key, value in (obj.get("stringData") or {}).items():
            out[key] = str(value).encode()
    else:
        for key, value in (obj.get("data") or {}).items():
            out[key] = str(value).encode()
        for key, value in (obj.get("binaryData") or {}).items():
            out[key] = base64.b64decode(str(value))
    return out


def _ref_value(ref: Obj, kind: str, namespace: str, lookup: Lookup) -> str | None:
    name, key = str(ref.get("name", "")), str(ref.get("key", ""))
    obj = lookup(kind, namespace, name)
    label = "configmap" if kind == "configmap" else "secret"
    if obj is None:
        if ref.get("optional"):
            return None
        raise PodConfigError(f'{label} "{name}" not found')
    data = config_data(kind, obj)
    if key not in data:
        if ref.get("optional"):
            return None
        raise PodConfigError(f"couldn't find key {key} in {label} {namespace}/{name}")
    return data[key].decode(errors="replace")


def _field_value(path: str, pod: Obj, node: str, pod_ip: str) -> str:
    meta = pod.get("metadata") or {}
    fields = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": node,
        "spec.serviceAccountName": (pod.get("spec") or {}).get("serviceAccountName", ""),
        "status.hostIP": "127.0.0.1",
        "status.podIP": pod_ip,
    }
    for prefix, source in (("metadata.labels", "labels"), ("metadata.annotations", "annotations")):
        if path.startswith(prefix + "['") and path.endswith("']"):
            return str((meta.get(source) or {}).get(path[len(prefix) + 2 : -2], ""))
    if path not in fields:
        raise PodConfigError(f"fieldRef {path!r} is not supported")
    return str(fields[path])


def container_env(container: Obj, pod: Obj, node: str, lookup: Lookup, base: Mapping[str, str],
                  pod_ip: str = "127.0.0.1") -> dict[str, str]:  # fmt: skip
    """envFrom, then env (later entries win; `$(VAR)` refers to earlier ones), over `base`."""
    namespace = str((pod.get("metadata") or {}).get("namespace") or "default")
    env = dict(base)
    for source in _items(container.get("envFrom"), "envFrom"):
        prefix = str(source.get("prefix", ""))
        for kind, field_name in (("configmap", "configMapRef"), ("secret", "secretRef")):
            ref = source.get(field_name)
            if not isinstance(ref, dict):
                continue
            obj = lookup(kind, namespace, str(ref.get("name", "")))
            if obj is None:
                if ref.get("optional"):
                    continue
                raise PodConfigError(f'{kind} "{ref.get("name", "")}" not found')
            for key, data in config_data(kind, obj).items():
                env[prefix + key] = data.decode(errors="replace")
    for item in _items(container.get("env"), "env"):
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise PodConfigError("env entries need a name")
        origin = item.get("valueFrom")
        if isinstance(origin, dict):
            value: str | None
            if isinstance(origin.get("configMapKeyRef"), dict):
                value = _ref_value(origin["configMapKeyRef"], "configmap", namespace, lookup)
            elif isinstance(origin.get("secretKeyRef"), dict):
                value = _ref_value(origin["secretKeyRef"], "secret", namespace, lookup)
            elif isinstance(origin.get("fieldRef"), dict):
                path = str(origin["fieldRef"].get("fieldPath", ""))
                value = _field_value(path, pod, node, pod_ip)
            else:
                raise PodConfigError(f"env {name}: valueFrom has no supported source")
            if value is not None:
                env[name] = value
        else:
            env[name] = expand(str(item.get("value", "")), env)
    return env


def _number(probe: Obj, key: str, default: float) -> float:
    value = probe.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise PodConfigError(f"probe {key} must be a non-negative number")
    return float(value)


def _port(value: Any, container: Obj) -> int:
    if isinstance(value, str):  # a named container port
        for port in _items(container.get("ports"), "ports"):
            if port.get("name") == value:
                value = port.get("containerPort")
                break
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise PodConfigError(f"probe port {value!r} is not a port")
    return value


def parse_probe(probe: Any, container: Obj) -> Probe | None:
    if probe is None:
        return None
    if not isinstance(probe, dict):
        raise PodConfigError("a probe must be an object")
    timing = {
        "initial_delay": _number(probe, "initialDelaySeconds", 0),
        "period": max(_number(probe, "periodSeconds", 10), 0.05),
        "timeout": max(_number(probe, "timeoutSeconds", 1), 0.05),
        "failures": max(int(_number(probe, "failureThreshold", 3)), 1),
        "successes": max(int(_number(probe, "successThreshold", 1)), 1),
    }
    if isinstance(probe.get("exec"), dict):
        command = _strings(probe["exec"].get("command"), "exec.command")
        if not command:
            raise PodConfigError("exec probe needs a command")
        return Probe("exec", command=tuple(command), **timing)  # type: ignore[arg-type]
    if isinstance(probe.get("httpGet"), dict):
        get = probe["httpGet"]
        return Probe(
            "http", host=str(get.get("host") or "127.0.0.1"),
            port=_port(get.get("port"), container), path=str(get.get("path") or "/"),
            scheme=str(get.get("scheme") or "HTTP").lower(),
            **timing,  # type: ignore[arg-type]
        )  # fmt: skip
    if isinstance(probe.get("tcpSocket"), dict):
        sock = probe["tcpSocket"]
        return Probe(
            "tcp", host=str(sock.get("host") or "127.0.0.1"),
            port=_port(sock.get("port"), container), **timing,  # type: ignore[arg-type]
        )  # fmt: skip
    raise PodConfigError("a probe needs exec, httpGet or tcpSocket")


def pull_policy(container: Obj) -> str:
    """imagePullPolicy, or Kubernetes' default: Always for `:latest` or no tag, else
    IfNotPresent."""
    image = str(container.get("image", ""))
    given = container.get("imagePullPolicy")
    if given is None:
        last = image.split("@", 1)[0].rsplit("/", 1)[-1]
        return "Always" if ":" not in last or last.endswith(":latest") else "IfNotPresent"
    if given not in ("Always", "IfNotPresent", "Never"):
        raise PodConfigError(f"imagePullPolicy {given!r} is not Always, IfNotPresent or Never")
    return str(given)


def plan_container(container: Obj, pod: Obj, node: str, lookup: Lookup, base: Mapping[str, str],
                   images: bool = True, pod_ip: str = "127.0.0.1") -> ContainerPlan:  # fmt: skip
    """What to run; a plan with `error` set when it cannot be run (the reason is shown).
    `images`: resolve the image through the process runtime's table (a container runtime has
    real images)."""
    name, image = str(container.get("name", "")), str(container.get("image", ""))
    try:
        mounts = tuple(
            Mount(str(m.get("name", "")), str(m.get("mountPath", "")), str(m.get("subPath", "")))
            for m in _items(container.get("volumeMounts"), "volumeMounts")
        )
        env = container_env(container, pod, node, lookup, base, pod_ip)
        policy = pull_policy(container)
        command = [expand(a, env) for a in _strings(container.get("command"), "command")]
        args = [expand(a, env) for a in _strings(container.get("args"), "args")]
        liveness = parse_probe(container.get("livenessProbe"), container)
        readiness = parse_probe(container.get("readinessProbe"), container)
    except PodConfigError as exc:
        return ContainerPlan(name, image, error=("CreateContainerConfigError", str(exc)))
    try:
        argv = resolve(image, command, args) if images else [*command, *args]
    except ImageError as exc:
        return ContainerPlan(name, image, error=("ErrImagePull", str(exc)))
    resources = container.get("resources")
    return ContainerPlan(
        name, image, tuple(argv), env, mounts, str(container.get("workingDir") or ""),
        liveness, readiness, command=tuple(command), args=tuple(args),
        resources=resources if isinstance(resources, dict) else {}, pull_policy=policy,
    )  # fmt: skip


def grace_period(pod: Obj) -> float:
    value = (pod.get("spec") or {}).get("terminationGracePeriodSeconds", DEFAULT_GRACE)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        return float(DEFAULT_GRACE)
    return float(value)


def restart_policy(pod: Obj) -> str:
    policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
    return policy if policy in ("Always", "OnFailure", "Never") else "Always"
