"""Reading a container's log for the cloud (`kubectl logs`): the tail, bounded in size."""

from __future__ import annotations

import re
from collections import deque
from pathlib import Path
from typing import Any

# CRI's log format: `<RFC3339Nano> <stdout|stderr> <F|P> <text>` (P: a partial line continues)
_CRI_LINE = re.compile(rb"^\S+ (?:stdout|stderr) ([FP]) (.*)$", re.DOTALL)


def plain(data: bytes) -> bytes:
    """A CRI-format log as the container wrote it; a plain log as it is."""
    out: list[bytes] = []
    partial = False
    for line in data.splitlines(keepends=True):
        match = _CRI_LINE.match(line.rstrip(b"\n"))
        if match is None:
            if not out and not partial:
                return data  # not CRI's format (the process runtime's plain log)
            continue
        out.append(match.group(2) + (b"" if match.group(1) == b"P" else b"\n"))
        partial = match.group(1) == b"P"
    return b"".join(out)


MAX_BYTES = 4 * 1024 * 1024


class LogError(ValueError):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def read_log(path: Path | None, query: dict[str, Any]) -> str:
    """The log text the query asks for (tailLines, limitBytes), or LogError."""
    if path is None:
        raise LogError(404, f"container {query.get('container')!r} not found in the pod")
    if not path.exists():
        what = "previous terminated container" if query.get("previous") else "container"
        raise LogError(400, f"{what} {query.get('container')!r} has no log yet")
    limit = query.get("limitBytes")
    limit = limit if isinstance(limit, int) and 0 < limit <= MAX_BYTES else MAX_BYTES
    tail = query.get("tailLines")
    with path.open("rb") as log:
        if isinstance(tail, int) and tail >= 0:
            size = path.stat().st_size
            log.seek(max(0, size - limit * 4))  # enough to hold the tail within the limit
            lines = deque(log, maxlen=tail) if tail else deque()
            data = plain(b"".join(lines))
        else:
            data = plain(log.read(limit))
    return data[-limit:].decode(errors="replace")
