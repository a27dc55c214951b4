"""Writes gathered over one turn of the event loop and sent in one system call: a call's
answer frames (or records), and every other answer made in the same turn, leave together."""

from __future__ import annotations

import asyncio


class Batched(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._out: list[bytes] = []

    def write(self, data: bytes) -> None:
        """Queued; everything queued in one turn of the loop leaves in one write."""
        if not self._out:
            asyncio.get_running_loop().call_soon(self._flush)
        self._out.append(data)

    def _flush(self) -> None:
        out, self._out = b"".join(self._out), []
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(out)
