"""`kedge` command line: one subcommand per process, each also runnable as `python -m`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from kedge.logs import setup_logging


def _edgecore(args: argparse.Namespace) -> int:
    from edgecore.cli import run

    return run(args)


def _up(args: argparse.Namespace) -> int:
    from edgecore.cli import run as run_edgecore
    from kedge.up import Supervise, run

    def edgecore(argv: list[str], supervise: Supervise) -> int:
        return run_edgecore(build_parser().parse_args(["edgecore", *argv]), supervise)

    return run(args, edgecore)


def _simulate(args: argparse.Namespace) -> int:
    # only the chosen simulator's protocol stack: each one imports tens of MB
    simulator = importlib.import_module(f"simulators.{args.protocol}")

    setup_logging(args.log_level)
    serve = simulator.serve_from
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))
    return 0


def _cloudcore(args: argparse.Namespace) -> int:
    from cloudcore.app import run

    return run(args)


def _token_create(args: argparse.Namespace) -> int:
    from cloudcore.tokens import create_token

    return create_token(args)


def _apiserver(args: argparse.Namespace) -> int:
    from cloudcore.apiserver.server import run

    return run(args)


def _mapper(args: argparse.Namespace) -> int:
    from mappers.app import run

    return run(args.protocol, args)


def build_parser() -> argparse.ArgumentParser:
    from cloudcore.apiserver.arguments import DEFAULT_PORT as DEFAULT_API_PORT
    from cloudcore.apiserver.arguments import add_arguments as apiserver_arguments
    from cloudcore.arguments import add_arguments as cloudcore_arguments
    from cloudcore.arguments import add_token_arguments
    from edgecore.config import add_arguments
    from mappers import app as mapper_app
    from simulators.arguments import ARGUMENTS as SIMULATOR_ARGUMENTS
    from simulators.arguments import log_level

    parser = argparse.ArgumentParser(prog="kedge", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    simulate = sub.add_parser("simulate", help="run a simulated device")
    protocols = simulate.add_subparsers(dest="protocol", required=True)
    helps = {
        "modbus": "Modbus TCP thermostat (pymodbus)",
        "opcua": "OPC UA thermostat (asyncua)",
        "bluetooth": "BLE thermostat peripheral (bumble; HCI over TCP for the central)",
        "zigbee": "ZigBee thermostat and light behind an emulated XBee radio (TCP)",
    }
    for protocol, add_simulator_arguments in SIMULATOR_ARGUMENTS.items():
        simulator = protocols.add_parser(protocol, help=helps[protocol])
        add_simulator_arguments(simulator)
        log_level(simulator, "info")
        simulator.set_defaults(func=_simulate)
    mapper = sub.add_parser("mapper", help="run a protocol mapper for one edge node")
    mapper_protocols = mapper.add_subparsers(dest="protocol", required=True)
    for protocol in mapper_app.PROTOCOLS:
        protocol_parser = mapper_protocols.add_parser(protocol, help=f"{protocol} mapper")
        mapper_app.add_arguments(protocol_parser)
        protocol_parser.set_defaults(func=_mapper)
    cloud = sub.add_parser("cloudcore", help="run CloudHub and the device controller")
    cloudcore_arguments(cloud)
    cloud.set_defaults(func=_cloudcore)
    token = sub.add_parser("token", help="join tokens for edge nodes")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    create = token_commands.add_parser(
        "create", help="print a join token (run where cloudcore keeps its state)"
    )
    add_token_arguments(create)
    create.set_defaults(func=_token_create)
    apiserver = sub.add_parser("apiserver", help="run the embedded Kubernetes API server alone")
    apiserver_arguments(apiserver)
    apiserver.set_defaults(func=_apiserver)
    edge = sub.add_parser("edgecore", help="run an edge node (twins, MQTT EventBus, HTTP API)")
    add_arguments(edge)
    edge.set_defaults(func=_edgecore)
    up = sub.add_parser("up", help="run the whole system on this machine (cloud, edge, devices)")
    up.add_argument("--state-dir", type=Path, default=Path(".kedge"))
    up.add_argument("--http-port", type=int, default=10550)
    up.add_argument("--mqtt-port", type=int, default=1883)
    up.add_argument("--api-port", type=int, default=DEFAULT_API_PORT)
    up.add_argument("--cloud-port", type=int, default=10000)
    up.add_argument("--join-port", type=int, default=10002)
    up.add_argument("--stream-port", type=int, default=10003)
    up.add_argument(
        "--reset", action="store_true",
        help="apply the samples over what is there (by default only absent ones are created)",
    )  # fmt: skip
    up.set_defaults(func=_up)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
