"""The process runtime's image table: which command an image name stands for.

There are no container images on the edge node: an image names a program kedge ships (or the
host's own programs). Tags are accepted and ignored, since the program is the installed one.

| image                        | runs                                                |
|------------------------------|-----------------------------------------------------|
| `kedge/mapper-<protocol>`    | `python -m mappers.<protocol>`                      |
| `kedge/simulator-<protocol>` | `python -m kedge simulate <protocol>`               |
| `kedge/python`               | the edge's Python interpreter                       |
| `kedge/host`                 | nothing by itself: `command` names a host program   |

`<protocol>` is any protocol plug-in in `mappers.registry`.

A container's `command` replaces the image's entrypoint and its `args` replace the image's
arguments, as in Kubernetes. Any other image is refused (the pod waits with `ErrImagePull`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from mappers.registry import PROTOCOLS


class ImageError(ValueError):
    """The image is not one the process runtime can run."""


@dataclass(frozen=True, slots=True)
class Image:
    entrypoint: tuple[str, ...]
    args: tuple[str, ...] = ()


def _table() -> dict[str, Image]:
    python = sys.executable
    table = {
        "kedge/python": Image((python,)),
        "kedge/host": Image(()),
    }
    for protocol in PROTOCOLS:
        table[f"kedge/mapper-{protocol}"] = Image((python, "-m", f"mappers.{protocol}"))
        table[f"kedge/simulator-{protocol}"] = Image((python, "-m", "kedge", "simulate", protocol))
    return table


IMAGES = _table()


def image_name(image: str) -> str:
    """`registry/name:tag@digest` -> `name` part used for lookup (registry `docker.io` dropped)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    return name.removeprefix("docker.io/")


def resolve(image: str, command: list[str], args: list[str]) -> list[str]:
    """The argv a container runs, or ImageError saying why there is none."""
    known = IMAGES.get(image_name(image))
    if known is None:
        raise ImageError(
            f"image {image!r} is not in the process runtime's table "
            f"(known: {', '.join(sorted(IMAGES))})"
        )
    entry = list(command) if command else list(known.entrypoint)
    rest = list(args) if (args or command) else list(known.args)
    argv = entry + rest
    if not argv:
        raise ImageError(f"image {image!r} needs a command")
    return argv
