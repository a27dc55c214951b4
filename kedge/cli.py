"""`kedge` command line: one subcommand per process, each also runnable as `python -m`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path


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
    """The chosen simulator parses the rest of the command line itself; only its protocol
    stack is imported (each one is tens of MB)."""
    from simulators.cli import run_simulator

    simulator = importlib.import_module(f"simulators.{args.protocol}")
    prog = f"kedge simulate {args.protocol}"
    return run_simulator(prog, simulator.__doc__, simulator.add_arguments, simulator.serve_from,
                         args.rest, "info")  # fmt: skip


def _cloudcore(args: argparse.Namespace) -> int:
    from cloudcore.app import run

    return run(args)


def _token_create(args: argparse.Namespace) -> int:
    from cloudcore.tokens import create_token

    return create_token(args)


def _apiserver(args: argparse.Namespace) -> int:
    from cloudcore.apiserver.server import run

    return run(args)


def _console(args: argparse.Namespace) -> int:
    from cloudcore.console.serve import run

    return run(args)


def _mapper(args: argparse.Namespace) -> int:
    from mappers.app import run

    return run(args.protocol, args)


def _up_parser(up: argparse.ArgumentParser) -> None:
    """`kedge up`: cloud, edge and devices on this machine."""
    from cloudcore.apiserver.arguments import DEFAULT_PORT as DEFAULT_API_PORT

    up.add_argument("--state-dir", type=Path, default=Path(".kedge"))
    up.add_argument("--http-port", type=int, default=10550)
    up.add_argument("--mqtt-port", type=int, default=1883)
    up.add_argument("--api-port", type=int, default=DEFAULT_API_PORT)
    up.add_argument("--cloud-port", type=int, default=10000)
    up.add_argument("--join-port", type=int, default=10002)
    up.add_argument("--stream-port", type=int, default=10003)
    up.add_argument("--console-port", type=int, default=10090)
    up.add_argument(
        "--runtime", choices=["process", "cri"], default="process",
        help="pods as host processes, or as containers in a containerd the edge node runs "
        "(needs root and containerd; kedge's images are built once, about 20 s)",
    )  # fmt: skip
    up.add_argument(
        "--reset", action="store_true",
        help="apply the samples over what is there (by default only absent ones are created)",
    )  # fmt: skip
    up.set_defaults(func=_up)


def build_parser() -> argparse.ArgumentParser:
    from cloudcore.apiserver.arguments import add_arguments as apiserver_arguments
    from cloudcore.arguments import add_arguments as cloudcore_arguments
    from cloudcore.arguments import add_token_arguments
    from cloudcore.console.serve import add_arguments as console_arguments
    from edgecore.config import add_arguments
    from kedge import images_cli
    from mappers import app as mapper_app
    from mappers.registry import PROTOCOLS

    parser = argparse.ArgumentParser(prog="kedge", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    simulate = sub.add_parser("simulate", help="run a simulated device")
    protocols = simulate.add_subparsers(dest="protocol", required=True)
    mapper = sub.add_parser("mapper", help="run a protocol mapper for one edge node")
    mapper_protocols = mapper.add_subparsers(dest="protocol", required=True)
    for protocol in PROTOCOLS.values():
        simulator = protocols.add_parser(protocol.name, help=protocol.title, add_help=False)
        simulator.set_defaults(func=_simulate)  # its own flags: `kedge simulate <p> --help`
        protocol_parser = mapper_protocols.add_parser(protocol.name, help=f"{protocol.name} mapper")
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
    console = sub.add_parser("console", help="serve the web console (nodes, devices, history)")
    console_arguments(console)
    console.set_defaults(func=_console)
    edge = sub.add_parser("edgecore", help="run an edge node (twins, MQTT EventBus, HTTP API)")
    add_arguments(edge)
    edge.set_defaults(func=_edgecore)
    _up_parser(sub.add_parser("up", help="run the whole system on this machine"))
    images_cli.add_arguments(sub.add_parser("image", help="images for the CRI runtime"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "simulate":  # a simulator parses its own flags
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.rest = rest
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
