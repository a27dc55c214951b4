"""Supervised tasks: a failing one is restarted after a backoff and reported as failing; one
that fails for good (PermanentError) ends the process's wait instead; one that returns is done."""

from __future__ import annotations

import asyncio

from kedge.errors import PermanentError
from kedge.tasks import Tasks


async def test_a_failing_task_restarts_with_backoff_and_is_reported() -> None:
    slept: list[float] = []
    runs = 0
    done = asyncio.Event()

    async def sleep(delay: float) -> None:
        slept.append(delay)

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs < 4:
            raise RuntimeError(f"boom {runs}")
        done.set()
        await asyncio.Event().wait()  # then it keeps working

    tasks = Tasks("test", sleep=sleep)
    tasks.start("flaky", flaky, first=0.5, cap=1.0)
    await asyncio.wait_for(done.wait(), 5)
    assert runs == 4 and slept == [0.5, 1.0, 1.0]
    assert tasks.restarts == {"flaky": 3}
    assert "boom 3" in tasks.failing()["flaky"]
    assert not tasks.fatal.done()
    await tasks.stop()
    assert tasks.running == {}


async def test_a_permanent_error_is_fatal_not_restarted() -> None:
    runs = 0

    async def refused() -> None:
        nonlocal runs
        runs += 1
        raise PermanentError("join token refused")

    tasks = Tasks("test")
    tasks.start("join", refused)
    error = await asyncio.wait_for(tasks.fatal, 5)
    assert str(error) == "join token refused" and runs == 1
    assert tasks.failing() == {"join": "join token refused"}
    await tasks.stop()


async def test_a_task_that_returns_is_not_restarted() -> None:
    runs = 0

    async def once() -> None:
        nonlocal runs
        runs += 1

    tasks = Tasks("test")
    tasks.start("once", once)
    await asyncio.wait_for(asyncio.gather(*tasks.running.values()), 5)
    assert runs == 1 and tasks.failing() == {}
    await tasks.stop()
