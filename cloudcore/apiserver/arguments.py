"""`kedge apiserver` flags, apart from the server so that `kedge`'s parser stays light."""

from __future__ import annotations

import argparse
from pathlib import Path

CHANGE_LOG = 50_000  # changes a watch can resume from (cloudcore.apiserver.store uses it)
DEFAULT_PORT = 6443


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--database", help="SQLAlchemy URL (postgresql://...); default SQLite in the state dir"
    )
    parser.add_argument(
        "--insecure", action="store_true", help="plain HTTP without authentication (loopback only)"
    )
    parser.add_argument(
        "--no-crds", action="store_true", help="do not load the Device and DeviceModel CRDs"
    )
    parser.add_argument(
        "--watch-history",
        type=int,
        default=CHANGE_LOG,
        help="changes kept for watches to resume from (older versions get 410 Gone)",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
