"""Liveness and readiness checks: exec (exit 0), httpGet (2xx/3xx), tcpSocket (connects)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from collections.abc import Mapping

from edgecore.edged.podspec import Probe


async def _exec(probe: Probe, env: Mapping[str, str], cwd: str) -> bool:
    try:
        process = await asyncio.create_subprocess_exec(
            *probe.command, env=dict(env), cwd=cwd,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
    except OSError:
        return False
    try:
        return await asyncio.wait_for(process.wait(), probe.timeout) == 0
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        return False


async def _http(probe: Probe) -> bool:
    context = None
    if probe.scheme == "https":  # kubelet does not verify probe certificates either
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    reader, writer = await asyncio.open_connection(probe.host, probe.port, ssl=context)
    try:
        writer.write(
            f"GET {probe.path} HTTP/1.1\r\nHost: {probe.host}:{probe.port}\r\n"
            f"User-Agent: kedge-probe/1\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        line = await reader.readline()
        parts = line.split()
        return len(parts) >= 2 and parts[1].isdigit() and 200 <= int(parts[1]) < 400
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _tcp(probe: Probe) -> bool:
    _, writer = await asyncio.open_connection(probe.host, probe.port)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def check(probe: Probe, env: Mapping[str, str], cwd: str) -> bool:
    """One probe run: True when it passed within its timeout."""
    if probe.action == "exec":
        return await _exec(probe, env, cwd or os.getcwd())
    try:
        action = _http(probe) if probe.action == "http" else _tcp(probe)
        return await asyncio.wait_for(action, probe.timeout)
    except (OSError, TimeoutError, ValueError):
        return False
