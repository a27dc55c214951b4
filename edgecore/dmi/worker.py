"""edgecore's side of DMI's front worker (edgecore.dmi.front): started with one end of a socket
pair, waited for until it listens, restarted with backoff if it dies, stopped with edgecore.

The worker holds no state: a restart loses only the calls in flight (answered UNAVAILABLE, which
mapper-framework mappers retry), and mappers reconnect to the same socket path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from kedge.backoff import Backoff
from kedge.errors import TemporaryError
from kedge.grpcwire.relay import Back
from kedge.grpcwire.server import Handler
from kedge.process import die_with_parent

log = logging.getLogger("kedge.dmi")
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0


class FrontError(TemporaryError):
    """The worker did not start listening."""


class DmiWorker:
    def __init__(self, path: Path, handlers: Sequence[Handler], node: str, max_message: int,
                 log_level: str = "info") -> None:  # fmt: skip
        self.path, self.handlers, self.node = path, handlers, node
        self.max_message, self.log_level = max_message, log_level
        self._process: asyncio.subprocess.Process | None = None
        self._back: Back | None = None
        self._watch: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """The worker listens on `path` when this returns (FrontError if it cannot)."""
        await self._spawn()
        self._watch = asyncio.create_task(self._supervise())

    def _argv(self, fd: int) -> list[str]:
        return [sys.executable, "-m", "edgecore.dmi.front", "--socket", str(self.path),
                "--fd", str(fd), "--node", self.node, "--log-level", self.log_level,
                "--max-message", str(self.max_message)]  # fmt: skip

    async def _spawn(self) -> None:
        ours, theirs = socket.socketpair()
        try:
            process = await asyncio.create_subprocess_exec(
                *self._argv(theirs.fileno()), pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL, preexec_fn=die_with_parent(),
            )  # fmt: skip
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        back = Back(self.handlers, self.max_message)
        await asyncio.get_running_loop().connect_accepted_socket(lambda: back, ours)
        ready = asyncio.ensure_future(back.ready.wait())
        exited = asyncio.ensure_future(process.wait())
        await asyncio.wait({ready, exited}, timeout=READY_TIMEOUT,
                           return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        exited.cancel()
        if not ready.done():
            ready.cancel()
            await _end(process, back)
            raise FrontError(f"DMI front did not listen on {self.path} (exit {process.returncode})")
        self._process, self._back = process, back
        log.info("DMI front started", extra={"node": self.node, "pid": process.pid})

    async def _supervise(self) -> None:
        backoff = Backoff(0.5, 30.0, healthy_after=60.0)
        while True:
            assert self._process is not None
            started = time.monotonic()
            code = await self._process.wait()
            ran = time.monotonic() - started
            delay = backoff.next(ran)
            log.warning("DMI front exited, restarting", extra={
                "node": self.node, "code": code, "in_seconds": delay})  # fmt: skip
            await asyncio.sleep(delay)  # the restart backoff
            try:
                await self._spawn()
            except (FrontError, OSError) as exc:
                log.error("DMI front restart failed: %s", exc, extra={"node": self.node})

    async def stop(self, _grace: float = 1.0) -> None:
        """Close edgecore's end: the worker gives calls in flight its own grace and exits."""
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if self._process is not None and self._back is not None:
            await _end(self._process, self._back)


async def _end(process: asyncio.subprocess.Process, back: Back) -> None:
    if back.transport is not None:
        back.transport.close()
    try:
        await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
