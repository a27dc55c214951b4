"""The processes `kedge up` runs beside its edge node: started so that they die with it,
restarted with a capped backoff when they die on their own, stopped in reverse order.

Restarts are seen without polling: each child's pidfd becomes readable when it exits, and the
event loop (the main thread, which started the child and whose death kills it) restarts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kedge.backoff import Backoff
from kedge.process import die_with_parent, record_pids

FIRST_BACKOFF = 0.5  # seconds before the first restart
MAX_BACKOFF = 30.0
RESET_AFTER = 60.0  # seconds of running that make the next failure a first one again


@dataclass
class Child:
    name: str
    argv: list[str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started: float = field(default_factory=time.monotonic)


def describe(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


class Children:
    def __init__(self, pid_file: Path, say: Callable[[str], None]) -> None:
        self.pid_file, self.say = pid_file, say
        self.running: list[Child] = []
        self.stopping = False

    def start(self, name: str, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        child = Child(name, argv, log)
        self.running.append(child)
        return self._spawn(child)

    def _spawn(self, child: Child) -> subprocess.Popen[bytes]:
        child.log.parent.mkdir(parents=True, exist_ok=True)
        with child.log.open("ab") as out:
            child.process = subprocess.Popen(
                child.argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=die_with_parent(),
            )  # fmt: skip
        child.started = time.monotonic()
        record_pids(self.pid_file, {c.name: (c.process.pid, c.argv) for c in self.running
                                    if c.process is not None})  # fmt: skip
        return child.process

    async def supervise(self) -> None:
        """Until cancelled: restart every child that exits."""
        await asyncio.gather(*(self._keep(child) for child in self.running))

    async def _keep(self, child: Child) -> None:
        backoff = Backoff(FIRST_BACKOFF, MAX_BACKOFF, healthy_after=RESET_AFTER)
        while not self.stopping:
            code = await _exited(child)
            if self.stopping:
                return
            delay = backoff.next(time.monotonic() - child.started)
            self.say(f"{child.name} stopped ({describe(code)}); restarting in {delay:g}s")
            await backoff.sleep(delay)  # the backoff between restarts
            if self.stopping:
                return
            child.restarts += 1
            process = self._spawn(child)
            self.say(f"{child.name} restarted (pid {process.pid}, restart {child.restarts})")

    def stop(self) -> None:
        """SIGTERM in reverse order of start, SIGKILL after 15 s; the pid file goes."""
        self.stopping = True
        processes = [c.process for c in reversed(self.running) if c.process is not None]
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.pid_file.unlink(missing_ok=True)


async def _exited(child: Child) -> int | None:
    """Wait until the child's process exits (its pidfd turns readable); its exit code."""
    process = child.process
    assert process is not None
    try:
        fd = os.pidfd_open(process.pid)
    except ProcessLookupError:  # reaped already
        return process.poll()
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    loop.add_reader(fd, _finish, done)
    try:
        await done
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    with contextlib.suppress(subprocess.TimeoutExpired):
        return process.wait(1)
    return None


def _finish(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)
