"""`kedge` command line: one subcommand per process, each also runnable as `python -m`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from kedge.logs import setup_logging

SAMPLES = Path(__file__).resolve().parent.parent / "crds" / "samples"
log = logging.getLogger("kedge")


def _edgecore(args: argparse.Namespace) -> int:
    from edgecore.cli import run

    return run(args)


def _port_or_free(port: int, what: str) -> int:
    """`port` if it can be bound on loopback, else a free one (e.g. a system mosquitto on 1883)."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
            return port
        except OSError:
            probe.bind(("127.0.0.1", 0))
            free = int(probe.getsockname()[1])
    print(f"kedge up: port {port} ({what}) is in use; using {free}", file=sys.stderr)  # noqa: T201
    return free


def _up(args: argparse.Namespace) -> int:
    """The embedded API server and a standalone edge node `edge-node-1` with a local mosquitto
    and the sample devices (cloud/edge sync, mappers and simulators come with issues 6 and 7)."""
    state: Path = args.state_dir
    mqtt_port = _port_or_free(args.mqtt_port, "MQTT")
    http_port = _port_or_free(args.http_port, "HTTP")
    api_port = _port_or_free(args.api_port, "Kubernetes API")
    argv = [
        "--node",
        "edge-node-1",
        "--state-dir",
        str(state),
        "--broker",
        f"local:{mqtt_port}",
        "--http",
        f"127.0.0.1:{http_port}",
        "--devices",
        *[str(p) for p in sorted(SAMPLES.glob("*.yaml"))],
    ]
    edge_args = build_parser().parse_args(["edgecore", *argv])
    api_state = state / "apiserver"
    api_state.mkdir(parents=True, exist_ok=True)
    with (api_state / "apiserver.log").open("ab") as api_log:
        apiserver = subprocess.Popen(
            [sys.executable, "-m", "cloudcore.apiserver", "--state-dir", str(api_state),
             "--port", str(api_port)],
            stdout=api_log, stderr=api_log,
        )  # fmt: skip
    kubeconfig = api_state / "kubeconfig"
    print(  # noqa: T201 - the quick start shows where to look
        f"kedge up: API server and standalone edge node edge-node-1\n"
        f"  Kubernetes API: https://127.0.0.1:{api_port}  (log in {api_state / 'apiserver.log'})\n"
        f"    export KUBECONFIG={kubeconfig.resolve()}\n"
        f"    kubectl get crds; kubectl apply -f crds/samples/modbus.yaml; kubectl get devices\n"
        f"  twins (HTTP):  http://127.0.0.1:{http_port}/v1/devices  (docs at /docs)\n"
        f"    curl http://127.0.0.1:{http_port}/v1/devices/default/thermostat-1\n"
        f"  MQTT broker:   127.0.0.1:{mqtt_port}, credentials in {state / 'broker' / 'mqtt-url'}\n"
        f"  state:         {state}\n"
        f"Ctrl-C stops everything.",
        file=sys.stderr,
    )
    try:
        return _edgecore(edge_args)
    finally:
        apiserver.terminate()
        try:
            apiserver.wait(15)
        except subprocess.TimeoutExpired:
            apiserver.kill()
            apiserver.wait()


def _simulate(args: argparse.Namespace) -> int:
    from simulators import bluetooth, modbus, opcua, zigbee

    setup_logging("info")
    simulators = {"modbus": modbus, "opcua": opcua, "bluetooth": bluetooth, "zigbee": zigbee}
    serve = simulators[args.protocol].serve_from
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
    up = sub.add_parser("up", help="run the system on this machine (API server and an edge node)")
    up.add_argument("--state-dir", type=Path, default=Path(".kedge"))
    up.add_argument("--http-port", type=int, default=10550)
    up.add_argument("--mqtt-port", type=int, default=1883)
    up.add_argument("--api-port", type=int, default=DEFAULT_API_PORT)
    up.set_defaults(func=_up)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
