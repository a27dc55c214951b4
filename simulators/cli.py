"""The command line every simulator shares: parse its flags, serve until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

from kedge.logs import setup_logging

AddArguments = Callable[[argparse.ArgumentParser], None]
Serve = Callable[[argparse.Namespace], Coroutine[Any, Any, None]]


def log_level(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument(
        "--log-level", default=default, choices=["debug", "info", "warning", "error"],
        help=f"info also logs each client connection with a running count (default {default})",
    )  # fmt: skip


def run_simulator(
    prog: str,
    doc: str | None,
    add_arguments: AddArguments,
    serve: Serve,
    argv: list[str] | None = None,
    log_default: str = "warning",
) -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    log_level(parser, log_default)
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))
    return 0
