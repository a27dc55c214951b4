"""`kubectl exec` under the process runtime: a command started in the container's environment
(its env, including KEDGE_NODE_NAME, and working directory), with pipes or, for `-t`, a
pseudo-terminal. Output comes out as (channel, bytes): 1 stdout, 2 stderr (a terminal has only
1), as Kubernetes' remotecommand numbers them."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import struct
import termios
from collections.abc import AsyncIterator, Mapping
from typing import Protocol

from kedge.process import die_with_parent
from kedge.remotecommand import STDERR, STDOUT

CHUNK = 32 * 1024


class ExecError(Exception):
    """The command could not start (or the container cannot run one): the reason says why."""


class ExecProcess(Protocol):
    """A running `kubectl exec` command, whichever runtime started it."""

    def output(self) -> AsyncIterator[tuple[int, bytes]]: ...

    async def write(self, data: bytes) -> None: ...

    def close_stdin(self) -> None: ...

    async def resize(self, width: int, height: int) -> None: ...

    async def wait(self) -> int: ...

    async def kill(self) -> None: ...


class HostExec:
    def __init__(self, process: asyncio.subprocess.Process, terminal: int | None) -> None:
        self.process, self.terminal = process, terminal
        self._output: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue(maxsize=64)
        self._readers = 0

    @classmethod
    async def start(cls, argv: list[str], env: Mapping[str, str], cwd: str, stdin: bool,
                    tty: bool) -> HostExec:  # fmt: skip
        """Without `stdin` the command reads /dev/null, as in a container started without."""
        master = slave = None
        if tty:
            master, slave = os.openpty()
        streams = {"stdin": slave, "stdout": slave, "stderr": slave} if tty else {
            "stdin": asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            "stdout": asyncio.subprocess.PIPE, "stderr": asyncio.subprocess.PIPE}  # fmt: skip
        try:
            process = await asyncio.create_subprocess_exec(
                *argv, env=dict(env), cwd=cwd, start_new_session=True,
                preexec_fn=die_with_parent(), **streams)  # fmt: skip
        except OSError as exc:
            if master is not None:
                os.close(master)
            raise ExecError(f"{argv[0]!r} could not start: {exc.strerror or exc}") from exc
        finally:
            if slave is not None:
                os.close(slave)
        made = cls(process, master)
        made._pump()
        return made

    def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        if self.terminal is not None:
            self._readers = 1
            os.set_blocking(self.terminal, False)
            loop.add_reader(self.terminal, self._read_terminal)
            return
        for channel, stream in ((STDOUT, self.process.stdout), (STDERR, self.process.stderr)):
            if stream is not None:
                self._readers += 1
                loop.create_task(self._read_pipe(channel, stream))

    def _read_terminal(self) -> None:
        assert self.terminal is not None
        try:
            data = os.read(self.terminal, CHUNK)
        except OSError:  # EIO: the terminal's last holder is gone
            data = b""
        if data and not self._output.full():
            self._output.put_nowait((STDOUT, data))
            return
        if data:  # the receiver is slow: pause the terminal until it caught up
            asyncio.get_running_loop().remove_reader(self.terminal)
            asyncio.get_running_loop().create_task(self._resume((STDOUT, data)))
            return
        asyncio.get_running_loop().remove_reader(self.terminal)
        asyncio.get_running_loop().create_task(self._output.put(None))

    async def _resume(self, item: tuple[int, bytes]) -> None:
        await self._output.put(item)
        if self.terminal is not None:
            asyncio.get_running_loop().add_reader(self.terminal, self._read_terminal)

    async def _read_pipe(self, channel: int, stream: asyncio.StreamReader) -> None:
        while data := await stream.read(CHUNK):
            await self._output.put((channel, data))
        await self._output.put(None)

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        """(channel, bytes) until the command closed its output."""
        ended = 0
        while ended < self._readers:
            item = await self._output.get()
            if item is None:
                ended += 1
            else:
                yield item

    async def write(self, data: bytes) -> None:
        if self.terminal is not None:
            await asyncio.to_thread(os.write, self.terminal, data)
        elif self.process.stdin is not None:
            self.process.stdin.write(data)
            with contextlib.suppress(ConnectionError):
                await self.process.stdin.drain()

    def close_stdin(self) -> None:
        if self.terminal is not None:
            with contextlib.suppress(OSError):
                os.write(self.terminal, b"\x04")  # a terminal's end of input: ^D
        elif self.process.stdin is not None:
            self.process.stdin.close()

    async def resize(self, width: int, height: int) -> None:
        if self.terminal is not None:
            size = struct.pack("HHHH", height, width, 0, 0)
            with contextlib.suppress(OSError):
                fcntl.ioctl(self.terminal, termios.TIOCSWINSZ, size)

    async def wait(self) -> int:
        code = await self.process.wait()
        return 128 - code if code < 0 else code

    async def kill(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            await self.process.wait()
        if self.terminal is not None:
            with contextlib.suppress(OSError, ValueError):
                asyncio.get_running_loop().remove_reader(self.terminal)
            with contextlib.suppress(OSError):
                os.close(self.terminal)
            self.terminal = None
