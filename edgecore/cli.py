"""`kedge edgecore` / `python -m edgecore`: run an edge node until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from devicetwin.spec import ManifestError
from edgecore.app import run_edgecore
from edgecore.broker import BrokerError
from edgecore.config import ConfigError, EdgeConfig, add_arguments, from_args
from edgecore.join import JoinError
from kedge.logs import setup_logging


async def _beside(config: EdgeConfig, alongside: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run `alongside()` on the node's event loop for as long as the node runs."""
    task = asyncio.create_task(alongside(), name="alongside")
    try:
        await run_edgecore(config)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def run(
    args: argparse.Namespace, alongside: Callable[[], Coroutine[Any, Any, None]] | None = None
) -> int:
    """Run the node until Ctrl-C; `kedge up` passes its child supervision as `alongside`."""
    try:
        config = from_args(args)
        setup_logging(config.log_level)
        asyncio.run(run_edgecore(config) if alongside is None else _beside(config, alongside))
    except (ConfigError, ManifestError, BrokerError, JoinError) as exc:
        print(f"kedge edgecore: {exc}", file=sys.stderr)  # noqa: T201 - the user's terminal
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgecore")
    add_arguments(parser)
    return run(parser.parse_args(argv))
