"""OCI images without a registry: a root filesystem packed as an OCI image layout archive (one
uncompressed layer) and imported into containerd's `k8s.io` namespace, the one its CRI plugin
serves. Also the two images edged itself needs: the sandbox's pause process (a static C program)
and a busybox userland (for tests and small jobs).
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

PAUSE_SOURCE = r"""
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
static void quit(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, 0, WNOHANG) > 0) {} }
int main(void) {
    signal(SIGTERM, quit);
    signal(SIGINT, quit);
    signal(SIGCHLD, reap);
    for (;;) pause();
}
"""
PATH_ENV = ("PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",)
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"


def _blob(out: tarfile.TarFile, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    _add(out, f"blobs/sha256/{digest}", data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _add(out: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    out.addfile(info, io.BytesIO(data))


def _layer(rootfs: Path, into: Path) -> dict[str, Any]:
    """The root filesystem as an uncompressed layer file (streamed: an image of hundreds of
    MiB never sits in memory); its digest and size."""
    with tarfile.open(into, mode="w", format=tarfile.PAX_FORMAT) as layer:
        for path in sorted(rootfs.rglob("*")):
            layer.add(path, arcname=str(path.relative_to(rootfs)), recursive=False)
    digest = hashlib.sha256()
    with into.open("rb") as data:
        while chunk := data.read(1 << 20):
            digest.update(chunk)
    return {"digest": f"sha256:{digest.hexdigest()}", "size": into.stat().st_size}


class Entry(NamedTuple):
    """One image of an archive: its name and what it runs (its entrypoint)."""

    name: str
    entrypoint: list[str]


def pack(rootfs: Path, name: str, archive: Path, cmd: list[str]) -> Path:
    """`rootfs` as an OCI image layout archive named `name` (repository:tag), running `cmd`."""
    return pack_many(rootfs, archive, [Entry(name, cmd)])


def pack_many(
    rootfs: Path, archive: Path, images: list[Entry], env: tuple[str, ...] = PATH_ENV
) -> Path:
    """Several images over one layer (`rootfs`), in one OCI image layout archive."""
    with tempfile.TemporaryDirectory(dir=archive.parent) as tmp:
        layer = Path(tmp) / "layer.tar"
        layer_ref = _layer(rootfs, layer)
        with tarfile.open(archive, "w") as out:
            out.add(layer, arcname=f"blobs/sha256/{layer_ref['digest'].removeprefix('sha256:')}")
            _manifests(out, images, env, layer_ref)
    return archive


def _manifests(out: tarfile.TarFile, images: list[Entry], env: tuple[str, ...],
               layer_ref: dict[str, Any]) -> None:  # fmt: skip
    """Each image's config and manifest over the shared layer, and the index naming them."""
    diff_id = layer_ref["digest"]  # uncompressed: the layer's digest is its diff id
    manifests = []
    for image in images:
        image_config = {"architecture": "amd64", "os": "linux",
                        "config": {"Entrypoint": image.entrypoint, "Env": list(env)},
                        "rootfs": {"type": "layers", "diff_ids": [diff_id]}}  # fmt: skip
        config_ref = _blob(out, json.dumps(image_config).encode())
        manifest = {"schemaVersion": 2, "mediaType": MANIFEST,
                    "config": {"mediaType": CONFIG, **config_ref},
                    "layers": [{"mediaType": LAYER, **layer_ref}]}  # fmt: skip
        manifest_ref = _blob(out, json.dumps(manifest).encode())
        tag = image.name.rpartition(":")[2]
        manifests.append({"mediaType": MANIFEST, **manifest_ref, "annotations": {
            "io.containerd.image.name": image.name,
            "org.opencontainers.image.ref.name": tag}})  # fmt: skip
    index = {"schemaVersion": 2, "manifests": manifests}
    _add(out, "index.json", json.dumps(index).encode())
    _add(out, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')


def import_archive(socket: Path, archive: Path) -> str:
    """Import into containerd's k8s.io namespace; ctr's output (the image names)."""
    ctr = shutil.which("ctr")
    if ctr is None:
        raise RuntimeError("ctr (containerd's client) is not installed")
    argv = [ctr, "-a", str(socket), "-n", "k8s.io", "images", "import", str(archive)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"image import failed: {done.stderr.strip()}")
    return done.stdout


def pause_rootfs(rootfs: Path) -> None:
    """The sandbox's process: sleeps until SIGTERM, reaps zombies (static, no libc needed)."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        raise RuntimeError("a C compiler is needed to build the pause image")
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "pause.c"
        source.write_text(PAUSE_SOURCE)
        subprocess.run(
            [gcc, "-Os", "-static", "-s", "-o", str(rootfs / "pause"), str(source)],
            check=True,
            capture_output=True,
            timeout=120,
        )


def busybox_rootfs(rootfs: Path) -> None:
    """A busybox userland: the static binary and a link per applet in /bin."""
    busybox = Path("/bin/busybox")
    if not busybox.exists():
        raise RuntimeError("busybox-static is not installed")
    (rootfs / "bin").mkdir(parents=True)
    (rootfs / "tmp").mkdir(mode=0o1777)
    shutil.copy2(busybox, rootfs / "bin" / "busybox")
    applets = subprocess.run(
        [str(busybox), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (rootfs / "bin" / applet).symlink_to("busybox")
