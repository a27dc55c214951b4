"""`kedge mapper <protocol>` / `python -m mappers.<protocol>`: run one protocol's mapper."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys

from kedge.logs import setup_logging
from kedge.mqtt import parse_mqtt_url
from mappers.registry import driver_factory
from mappers.runtime import Mapper, MapperSettings

log = logging.getLogger("kedge.mapper")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    node, mqtt = os.environ.get("KEDGE_NODE_NAME"), os.environ.get("KEDGE_MQTT_URL")
    parser.add_argument(
        "--node", required=node is None, default=node,
        help="edge node whose devices to serve (default $KEDGE_NODE_NAME, set in edge pods)",
    )  # fmt: skip
    parser.add_argument(
        "--mqtt", required=mqtt is None, default=mqtt,
        help="broker, mqtt://[user:password@]host[:port] (default $KEDGE_MQTT_URL: edge pods "
        "get the node's broker)",
    )  # fmt: skip
    parser.add_argument(
        "--offline-after",
        type=int,
        default=3,
        help="unreachable polls in a row before a device is offline (default 3)",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )


async def _serve(mapper: Mapper) -> None:
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(mapper.run())
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


def run(protocol: str, args: argparse.Namespace) -> int:
    setup_logging(args.log_level)
    try:
        settings = MapperSettings(
            protocol, args.node, parse_mqtt_url(args.mqtt), offline_after=max(1, args.offline_after)
        )
    except ValueError as exc:
        print(f"kedge mapper: --mqtt: {exc}", file=sys.stderr)  # noqa: T201 - user's terminal
        return 2
    asyncio.run(_serve(Mapper(settings, driver_factory(protocol))))
    return 0


def main(protocol: str, argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m mappers.{protocol}")
    add_arguments(parser)
    return run(protocol, parser.parse_args(argv))


__all__ = ["add_arguments", "main", "run"]
