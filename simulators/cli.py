"""The command line every simulator shares: parse its flags, serve until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

AddArguments = Callable[[argparse.ArgumentParser], None]
Serve = Callable[[argparse.Namespace], Coroutine[Any, Any, None]]


def run_simulator(
    prog: str,
    doc: str | None,
    add_arguments: AddArguments,
    serve: Serve,
    argv: list[str] | None = None,
) -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))
    return 0
