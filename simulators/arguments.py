"""Each simulator's command-line flags, apart from the simulators so that building `kedge`'s
parser does not import pymodbus, asyncua, bumble and zigpy."""

from __future__ import annotations

import argparse
from pathlib import Path


def modbus(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=5020, help="TCP port (default 5020)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--device-id", type=int, default=1, help="Modbus unit id (default 1)")
    parser.add_argument(
        "--rtu",
        action="store_true",
        help="RTU framing on the TCP port (reach it as serialPort socket://host:port)",
    )


def opcua(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=4840, help="TCP port (default 4840)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--username", help="require this user (default: anonymous allowed)")
    parser.add_argument("--password", help="the user's password")
    parser.add_argument(
        "--secure",
        type=Path,
        metavar="DIR",
        help="serve Basic256Sha256 SignAndEncrypt only, certificate kept in DIR",
    )


def bluetooth(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=19002, help="HCI over TCP port (19002)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")


def zigbee(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=19003, help="TCP port of the emulated radio")
    parser.add_argument(
        "--joined",
        action="store_true",
        help="devices start joined (a network that existed before this run)",
    )


ARGUMENTS = {"modbus": modbus, "opcua": opcua, "bluetooth": bluetooth, "zigbee": zigbee}


def log_level(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument(
        "--log-level", default=default, choices=["debug", "info", "warning", "error"],
        help=f"info also logs each client connection with a running count (default {default})",
    )  # fmt: skip
