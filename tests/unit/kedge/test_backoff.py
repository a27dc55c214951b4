"""The one backoff: doubling to a cap, free retries, reset by success or a long healthy run, and
a sleep seam that lets a test drive a retry loop without time passing."""

from __future__ import annotations

from kedge.backoff import Backoff


def test_doubles_up_to_the_cap_and_starts_over_after_reset() -> None:
    backoff = Backoff(0.5, 3.0)
    assert [backoff.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.next() == 0.5


def test_free_retries_come_first_like_crash_loop_backoff() -> None:
    backoff = Backoff(10.0, 300.0, free=1)
    assert [backoff.next() for _ in range(7)] == [0.0, 10.0, 20.0, 40.0, 80.0, 160.0, 300.0]


def test_a_long_enough_run_counts_as_a_success() -> None:
    backoff = Backoff(1.0, 30.0, healthy_after=60.0)
    assert [backoff.next(ran_for=1.0) for _ in range(3)] == [1.0, 2.0, 4.0]
    assert backoff.next(ran_for=60.0) == 1.0
    assert backoff.next(ran_for=59.0) == 2.0


def test_upcoming_tells_the_next_delay_without_counting() -> None:
    backoff = Backoff(1.0, 8.0)
    backoff.next()
    assert backoff.upcoming == 2.0
    assert backoff.upcoming == 2.0
    assert backoff.next() == 2.0


def test_many_failures_stay_at_the_cap() -> None:
    backoff = Backoff(0.1, 5.0)
    for _ in range(10_000):
        backoff.next()
    assert backoff.next() == 5.0


async def test_pause_sleeps_through_the_seam() -> None:
    slept: list[float] = []

    async def sleep(delay: float) -> None:
        slept.append(delay)

    backoff = Backoff(0.25, 1.0, sleep=sleep)
    for _ in range(4):
        await backoff.pause()
    assert slept == [0.25, 0.5, 1.0, 1.0]
