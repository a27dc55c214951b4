"""The harness never drops a running child: one that never got ready is ended before the error
goes up, and starting over a running one is refused."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness.support import fresh, ready_or_ended

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def test_a_child_that_never_gets_ready_is_ended() -> None:
    child = subprocess.Popen(SLEEPER)
    with pytest.raises(TimeoutError, match="the sleeper"):
        ready_or_ended(child, lambda: False, 0.1, "the sleeper")
    assert child.returncode is not None  # reaped, not left to the garbage collector


def test_starting_over_a_running_child_is_refused() -> None:
    child = subprocess.Popen(SLEEPER)
    try:
        with pytest.raises(RuntimeError, match="still running"):
            fresh(child)
    finally:
        child.kill()
        child.wait(10)
    fresh(child)  # ended: a new one may start
    fresh(None)
