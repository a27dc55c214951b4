"""kedge's own images, built here without a registry: a Python userland from Debian packages
(the interpreter and its libraries, no dpkg, perl or apt), kedge and its dependencies from its
wheel, one layer shared by every image (`kedge/mapper-<protocol>:<tag>`,
`kedge/simulator-<protocol>:<tag>`, `kedge/cloudcore:<tag>` for deploy/cloudcore), each image
with its own entrypoint.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from edgecore.edged.cri.images import Entry, pack_many
from mappers.registry import PROTOCOLS

TAG = "0.1"  # the tag deploy/mappers/ names
PYTHON = "python3"
# what python3 depends on that a runtime image does not need
NOT_NEEDED = {"dpkg", "perl", "perl-base", "perl-modules-5.36", "libperl5.36", "tar",
              "install-info", "mailcap", "mime-support", "libgdbm-compat4", "libdb5.3"}  # fmt: skip
SITE = "/opt/kedge"


def _run(argv: list[str], cwd: Path | None = None) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


def python_rootfs(rootfs: Path) -> None:
    """python3 and the packages it needs, unpacked (about 50 MB), /usr merged as Debian does."""
    listed = _run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
                   "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances",
                   "--no-pre-depends", PYTHON])  # fmt: skip
    packages = sorted({line for line in listed.splitlines()
                       if line and not line.startswith((" ", "<"))} - NOT_NEEDED)  # fmt: skip
    with tempfile.TemporaryDirectory() as debs:
        _run(["apt-get", "download", *packages], cwd=Path(debs))
        for deb in sorted(Path(debs).glob("*.deb")):
            _run(["dpkg-deb", "-x", str(deb), str(rootfs)])
    for top in ("bin", "sbin", "lib", "lib64"):
        path, merged = rootfs / top, rootfs / "usr" / top
        if path.is_dir() and not path.is_symlink():
            merged.mkdir(parents=True, exist_ok=True)
            shutil.copytree(path, merged, symlinks=True, dirs_exist_ok=True)
            shutil.rmtree(path)
        merged.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.symlink_to(f"usr/{top}")
    python = rootfs / "usr" / "bin" / PYTHON
    if not python.exists():
        versions = sorted((rootfs / "usr" / "bin").glob("python3.*[0-9]"))
        python.symlink_to(versions[-1].name)
    (rootfs / "tmp").mkdir(mode=0o1777, exist_ok=True)


def install_kedge(rootfs: Path, project: Path) -> None:
    """kedge and its dependencies into the image (wheels for the image's Python, which is the
    same minor version as this one's)."""
    _run([sys.executable, "-m", "pip", "install", "--quiet", "--no-compile",
          "--target", str(rootfs / SITE.lstrip("/")), str(project)])  # fmt: skip


def entries(tag: str = TAG) -> list[Entry]:
    python = f"/usr/bin/{PYTHON}"
    out = []
    for protocol in PROTOCOLS:
        out.append(Entry(f"docker.io/kedge/mapper-{protocol}:{tag}",
                         [python, "-m", f"mappers.{protocol}"]))  # fmt: skip
        out.append(Entry(f"docker.io/kedge/simulator-{protocol}:{tag}",
                         [python, "-m", "kedge", "simulate", protocol]))  # fmt: skip
    out.append(Entry(f"docker.io/kedge/cloudcore:{tag}", [python, "-m", "cloudcore"]))
    return out


def build(archive: Path, project: Path, tag: str = TAG) -> Path:
    """Every kedge image in one OCI archive (one shared layer)."""
    with tempfile.TemporaryDirectory(dir=archive.parent) as tmp:
        rootfs = Path(tmp) / "rootfs"
        rootfs.mkdir()
        python_rootfs(rootfs)
        install_kedge(rootfs, project)
        env = ("PATH=/usr/local/bin:/usr/bin:/bin", f"PYTHONPATH={SITE}", "PYTHONUNBUFFERED=1")
        return pack_many(rootfs, archive, entries(tag), env)
