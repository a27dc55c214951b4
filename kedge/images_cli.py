"""`kedge image build` and `kedge image import`: images for the CRI runtime without a registry."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="image_command", required=True)
    build = commands.add_parser(
        "build", help="build kedge's mapper and simulator images into one OCI archive"
    )
    build.add_argument("--out", type=Path, default=Path("kedge-images.tar"))
    build.add_argument("--tag", default=None, help="image tag (default: the one deploy/ names)")
    build.set_defaults(func=_build)
    load = commands.add_parser(
        "import", help="import an OCI or docker archive into an edge node's containerd"
    )
    load.add_argument("archive", type=Path)
    where = load.add_mutually_exclusive_group(required=True)
    where.add_argument("--state-dir", type=Path, help="the edge node's state dir (its containerd)")
    where.add_argument("--address", type=Path, help="a containerd socket")
    load.set_defaults(func=_import)


def _build(args: argparse.Namespace) -> int:
    from edgecore.edged.cri import kedge_images

    started = time.monotonic()
    archive = kedge_images.build(args.out.absolute(), ROOT, args.tag or kedge_images.TAG)
    size = archive.stat().st_size / 2**20
    print(f"{archive}: {size:.0f} MiB in {time.monotonic() - started:.0f} s")  # noqa: T201
    return 0


def _import(args: argparse.Namespace) -> int:
    from edgecore.edged.cri.images import import_archive
    from edgecore.edged.cri.runtime import run_dir

    socket = args.address or run_dir(args.state_dir) / "containerd.sock"
    print(import_archive(socket, args.archive), end="")  # noqa: T201
    return 0
