"""`kedge edgecore` / `python -m edgecore`: run an edge node until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import sys

from devicetwin.spec import ManifestError
from edgecore.app import run_edgecore
from edgecore.broker import BrokerError
from edgecore.config import ConfigError, add_arguments, from_args
from edgecore.join import JoinError
from kedge.logs import setup_logging


def run(args: argparse.Namespace) -> int:
    try:
        config = from_args(args)
        setup_logging(config.log_level)
        asyncio.run(run_edgecore(config))
    except (ConfigError, ManifestError, BrokerError, JoinError) as exc:
        print(f"kedge edgecore: {exc}", file=sys.stderr)  # noqa: T201 - the user's terminal
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgecore")
    add_arguments(parser)
    return run(parser.parse_args(argv))
