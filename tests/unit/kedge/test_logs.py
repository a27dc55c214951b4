"""Structured logs: what a long garbage collection leaves in them."""

from __future__ import annotations

import gc
import logging

import pytest

from kedge.logs import log_gc_pauses


def test_gc_pauses_over_the_limit_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.gc")
    before = list(gc.callbacks)
    try:
        log_gc_pauses(logger, over=0.0)
        with caplog.at_level(logging.WARNING, logger="test.gc"):
            gc.collect()
    finally:
        gc.callbacks[:] = before
    paused = [
        r for r in caplog.records if r.getMessage() == "garbage collection paused the process"
    ]
    facts = paused[0].__dict__ if paused else {}
    assert facts.get("generation") == 2
    assert 0 <= facts["cpu_seconds"] <= facts["seconds"] + 0.01  # work, and waiting for a core


def test_gc_pauses_under_the_limit_are_not(caplog: pytest.LogCaptureFixture) -> None:
    before = list(gc.callbacks)
    try:
        log_gc_pauses(logging.getLogger("test.gc"), over=60.0)
        with caplog.at_level(logging.WARNING, logger="test.gc"):
            gc.collect()
    finally:
        gc.callbacks[:] = before
    assert not caplog.records
