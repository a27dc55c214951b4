"""`kedge cloudcore` flags, apart from cloudcore so that `kedge`'s parser stays light."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_PORT = 10000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", type=Path, required=True, help="the API server to serve")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="CloudHub (wss) port")
    parser.add_argument(
        "--status-interval",
        type=float,
        default=1.0,
        help="seconds between Device.status writes per device (reports in between coalesce)",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
