"""All devices together are written at most `qps` times a second (bursts of twice that)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from controllers.status import StatusWriter
from harness.support import wait_until


async def test_writer_when_over_budget_paces_writes_and_loses_none() -> None:
    written: list[str] = []

    async def write(_namespace: str, name: str, _status: dict[str, Any]) -> None:
        written.append(name)

    writer = StatusWriter(write, interval=0, qps=10)
    task = asyncio.create_task(writer.run())
    start = time.monotonic()
    for i in range(25):  # burst of 20 at once, the other 5 at 10 per second
        writer.report(("default", f"d{i}"), {"state": "online"})
    await wait_until(lambda: len(written) == 25, within=10, what="every report written")
    elapsed = time.monotonic() - start
    task.cancel()
    assert sorted(written) == sorted(f"d{i}" for i in range(25))
    assert elapsed >= 0.4  # a limiter can be slower than its budget, never faster
