"""Pod volumes as directories under the pod's directory (the process runtime has no mounts).

configMap and secret volumes are files, one per key (or per `items` entry), rewritten whenever
the object changes; Secrets go to memory (under /dev/shm, where the machine has it). emptyDir is
an empty directory kept for the pod's life; hostPath is the host path itself. A process finds
them because mount paths in its argv and env are rewritten to these directories (`rewrite`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgecore.edged.podspec import Lookup, Mount, PodConfigError, config_data

Obj = dict[str, Any]


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.chmod(mode)
    os.replace(tmp, path)


def _safe(relative: str) -> str:
    parts = Path(relative).parts
    if not relative or Path(relative).is_absolute() or ".." in parts:
        raise PodConfigError(f"volume item path {relative!r} must be relative, without '..'")
    return relative


def _project(kind: str, source: Obj, namespace: str, lookup: Lookup, target: Path) -> None:
    name = str(source.get("name" if kind == "configmap" else "secretName", ""))
    obj = lookup(kind, namespace, name)
    if obj is None:
        if source.get("optional"):
            target.mkdir(parents=True, exist_ok=True)
            return
        raise PodConfigError(f'{kind} "{name}" not found')
    data = config_data(kind, obj)
    mode = int(source.get("defaultMode", 0o644 if kind == "configmap" else 0o600)) & 0o777
    files: dict[str, tuple[bytes, int]] = {}
    items = source.get("items")
    if isinstance(items, list):
        for item in items:
            key = str((item or {}).get("key", ""))
            if key not in data:
                raise PodConfigError(f"{kind} {namespace}/{name} has no key {key!r}")
            files[_safe(str(item.get("path") or key))] = (data[key], int(item.get("mode", mode)))
    else:
        files = {_safe(k): (v, mode) for k, v in data.items()}
    target.mkdir(parents=True, exist_ok=True)
    for relative, (content, file_mode) in files.items():
        path = target / relative
        if not path.exists() or path.read_bytes() != content:
            _write_atomic(path, content, file_mode & 0o777)
    for old in [p for p in target.rglob("*") if p.is_file()]:
        if str(old.relative_to(target)) not in files:
            old.unlink()


def _on_tmpfs(path: Path) -> bool:
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return False
    return any(f" {path} tmpfs " in f" {line} " for line in mounts)


def secret_root(pods_dir: Path) -> Path:
    """Where this node's pods find their Secret volumes: a 0700 directory in memory (under the
    tmpfs /dev/shm) where there is one, so Secret values never reach the disk; else beside the
    pods. One per state dir, so two edgecores on a machine keep theirs apart."""
    shm = Path("/dev/shm")
    if _on_tmpfs(shm) and os.access(shm, os.W_OK):
        digest = hashlib.sha256(str(pods_dir.resolve()).encode()).hexdigest()[:16]
        root = shm / f"kedge-{os.getuid()}-{digest}"
    else:
        root = pods_dir / ".secrets"
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    return root


def materialise(
    pod: Obj, pod_dir: Path, lookup: Lookup, secrets_dir: Path | None = None
) -> dict[str, Path]:
    """volume name -> its directory (or host path), written or refreshed now; Secret volumes
    go under `secrets_dir` (in memory, see secret_root) when given."""
    namespace = str((pod.get("metadata") or {}).get("namespace") or "default")
    out: dict[str, Path] = {}
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        if not isinstance(volume, dict) or not volume.get("name"):
            raise PodConfigError("volumes need a name")
        name = str(volume["name"])
        target = pod_dir / "volumes" / name
        if isinstance(volume.get("configMap"), dict):
            _project("configmap", volume["configMap"], namespace, lookup, target)
        elif isinstance(volume.get("secret"), dict):
            target = (secrets_dir or pod_dir / "volumes") / name
            _project("secret", volume["secret"], namespace, lookup, target)
        elif "emptyDir" in volume:
            target.mkdir(parents=True, exist_ok=True)
        elif isinstance(volume.get("hostPath"), dict):
            path = Path(str(volume["hostPath"].get("path", "")))
            kind = str(volume["hostPath"].get("type") or "")
            if kind == "DirectoryOrCreate":
                path.mkdir(parents=True, exist_ok=True)
            elif kind in ("Directory", "File", "Socket") and not path.exists():
                raise PodConfigError(f"hostPath {path} does not exist")
            target = path
        else:
            raise PodConfigError(
                f"volume {name}: only configMap, secret, emptyDir, hostPath run here"
            )
        out[name] = target
    return out


def mount_table(mounts: tuple[Mount, ...], volumes: Mapping[str, Path]) -> list[tuple[str, str]]:
    """(mountPath, directory) pairs, longest mount path first."""
    table = []
    for mount in mounts:
        if mount.volume not in volumes:
            raise PodConfigError(f"volumeMount {mount.volume!r} names no volume")
        if not mount.path.startswith("/"):
            raise PodConfigError(f"mountPath {mount.path!r} must be absolute")
        where = (
            volumes[mount.volume] / _safe(mount.sub_path)
            if mount.sub_path
            else volumes[mount.volume]
        )
        table.append((mount.path.rstrip("/") or "/", str(where)))
    return sorted(table, key=lambda pair: -len(pair[0]))


def rewrite(text: str, table: list[tuple[str, str]]) -> str:
    """A mount path at the start of `text` (or right after `=`) becomes the volume's directory."""
    head, sep, tail = text.partition("=") if not text.startswith("/") else ("", "", text)
    for mount, where in table:
        if tail == mount or tail.startswith(mount + "/"):
            return head + sep + where + tail[len(mount) :]
    return text
