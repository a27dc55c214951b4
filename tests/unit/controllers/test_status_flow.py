"""The status writer keeps its writers busy: a slow write holds only itself, a device is never
written twice at once, and a device inside its interval waits for a timer, not a rescan."""

from __future__ import annotations

import asyncio
from typing import Any

from controllers.status import IN_FLIGHT, StatusWriter
from harness.support import wait_until


async def test_a_slow_write_holds_only_its_own_device() -> None:
    stuck, written = asyncio.Event(), []

    async def write(_namespace: str, name: str, _status: dict[str, Any]) -> None:
        if name == "slow":
            await stuck.wait()
        written.append(name)

    writer = StatusWriter(write, interval=0)
    task = asyncio.create_task(writer.run())
    writer.report(("default", "slow"), {"n": 1})
    for i in range(5 * IN_FLIGHT):  # many batches' worth behind the slow one
        writer.report(("default", f"d{i}"), {"n": 1})
    await wait_until(lambda: len(written) == 5 * IN_FLIGHT, within=5, what="others written")
    assert "slow" not in written
    stuck.set()
    await wait_until(lambda: "slow" in written, within=5, what="slow one written")
    task.cancel()


async def test_one_device_is_never_written_by_two_writers_at_once() -> None:
    inside, most, values = 0, 0, []
    release = asyncio.Event()

    async def write(_namespace: str, _name: str, status: dict[str, Any]) -> None:
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        await release.wait()
        values.append(status["n"])
        inside -= 1

    writer = StatusWriter(write, interval=0)
    task = asyncio.create_task(writer.run())
    writer.report(("default", "d"), {"n": 1})
    await wait_until(lambda: inside == 1, within=5, what="first write started")
    for n in range(2, 10):  # arrive while the first is being written: latest wins
        writer.report(("default", "d"), {"n": n})
    release.set()
    await wait_until(lambda: writer.pending == 0 and inside == 0, within=5, what="settled")
    task.cancel()
    assert most == 1 and values == [1, 9]


async def test_a_device_inside_its_interval_is_written_when_the_interval_ends() -> None:
    stamps: list[float] = []
    loop = asyncio.get_running_loop()

    async def write(_namespace: str, _name: str, _status: dict[str, Any]) -> None:
        stamps.append(loop.time())

    writer = StatusWriter(write, interval=0.3)
    task = asyncio.create_task(writer.run())
    writer.report(("default", "d"), {"n": 1})
    await wait_until(lambda: len(stamps) == 1, within=5, what="first write")
    writer.report(("default", "d"), {"n": 2})
    writer.report(("default", "d"), {"n": 1})  # back to what was written: nothing to write
    writer.report(("default", "d"), {"n": 3})
    await wait_until(lambda: len(stamps) == 2, within=5, what="second write")
    task.cancel()
    assert stamps[1] - stamps[0] >= 0.29


async def test_a_failing_write_is_retried_without_a_tight_loop() -> None:
    attempts = 0

    async def write(_namespace: str, _name: str, _status: dict[str, Any]) -> None:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise ConnectionError("API server away")

    writer = StatusWriter(write, interval=0)
    task = asyncio.create_task(writer.run())
    writer.report(("default", "d"), {"n": 1})
    await wait_until(lambda: attempts >= 2, within=5, what="a retry")
    assert attempts == 2 and writer.pending == 1  # not hundreds of attempts in a second
    await wait_until(lambda: writer.pending == 0, within=5, what="written at last")
    task.cancel()
    assert attempts == 3
