"""Child processes that cannot outlive their parent, and what a killed run left behind.

Every process kedge starts (the API server, cloudcore and simulators under `kedge up`, the
broker and pods under edgecore) asks the kernel for SIGKILL when its parent dies
(PR_SET_PDEATHSIG), so even `kill -9` of the parent leaves nothing running. A pid file in the
state dir lets the next start on that dir find and end any survivor (a parent that was not
kedge, an older kedge), matched by its command line so an unrelated process that reused the
pid is never touched.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import select
import signal
import time
from collections.abc import Callable
from pathlib import Path

_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded here: the child must not take loader locks


def die_with_parent() -> Callable[[], None]:
    """A `preexec_fn` for Popen: SIGKILL when the parent (this process) dies, and exit at once
    if it already died between fork and prctl."""
    parent = os.getpid()

    def arrange() -> None:  # pragma: no cover - runs in the child between fork and exec
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(1)

    return arrange


SOCKET_PATH_MAX = 107  # a Unix socket's path: sun_path holds 108 bytes with its terminating NUL


def write_private(path: Path, text: str) -> None:
    """Write a state file readable by its owner only (0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def record_pids(path: Path, processes: dict[str, tuple[int, list[str]]]) -> None:
    """Remember {name: (pid, argv)} of running children in a pid file (0600)."""
    write_private(path, json.dumps({n: [p, a] for n, (p, a) in processes.items()}))


def _command_line(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return raw.decode(errors="replace").split("\0")[:-1]


def _recorded(path: Path) -> list[tuple[int, list[str]]]:
    try:
        recorded = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(recorded, dict):
        return []
    return [
        (entry[0], entry[1])
        for entry in recorded.values()
        if isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], int)
        and entry[0] > 1 and isinstance(entry[1], list)
    ]  # fmt: skip


def end_stale(path: Path, grace: float = 5.0) -> list[int]:
    """End the processes a pid file lists that still run the command recorded with them (a pid
    reused by anything else is left alone); returns the pids ended."""
    stale = [pid for pid, argv in _recorded(path)
             if pid != os.getpid() and _command_line(pid) == argv]  # fmt: skip
    for pid in stale:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    for pid in _wait_gone(stale, grace):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _wait_gone(stale, grace)
    path.unlink(missing_ok=True)
    return stale


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    """Wait (on pidfds, no polling) until `pids` have exited; returns those still running."""
    fds: dict[int, int] = {}
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            fds[os.pidfd_open(pid)] = pid
    deadline = time.monotonic() + timeout
    try:
        while fds and (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select(list(fds), [], [], left)
            for fd in ready:
                os.close(fd)
                del fds[fd]
        return list(fds.values())
    finally:
        for fd in fds:
            os.close(fd)


def private_state(directory: Path) -> None:
    """From now on, files this process creates are its owner's alone (umask 077: 0600 files,
    0700 directories; SQLite gives WAL and SHM files its database's mode), and what an older
    version left in `directory` is made so too."""
    os.umask(0o077)
    directory.mkdir(parents=True, exist_ok=True)
    for root, dirs, files in os.walk(directory):
        os.chmod(root, 0o700)
        for name in files:
            path = Path(root) / name
            if not path.is_symlink():
                with contextlib.suppress(OSError):  # a file removed meanwhile
                    os.chmod(path, 0o600)
        dirs[:] = [d for d in dirs if not (Path(root) / d).is_symlink()]
