"""`kedge cloudcore` and `kedge token` flags, apart from cloudcore so that `kedge`'s parser
stays light."""

from __future__ import annotations

import argparse
import datetime
import re
from pathlib import Path

DEFAULT_PORT = 10000
DEFAULT_JOIN_PORT = 10002
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> datetime.timedelta:
    """`90s`, `15m`, `12h`, `365d` -> a positive timedelta (argparse type)."""
    match = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if match is None or int(match[1]) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90s, 15m, 12h, 365d")
    return datetime.timedelta(seconds=int(match[1]) * UNITS[match[2]])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kubeconfig", type=Path,
        help="the API server to serve (default: in a pod, its service account)",
    )  # fmt: skip
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--cert-hosts", default="",
        help="more names and addresses for the serving certificate, comma separated (the "
        "Service or load balancer edge nodes connect through)",
    )  # fmt: skip
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="CloudHub (wss) port")
    parser.add_argument(
        "--join-port", type=int, default=DEFAULT_JOIN_PORT, help="join service (https) port"
    )
    parser.add_argument(
        "--stream-port", type=int, default=10003,
        help="CloudStream (https): container logs of edge pods, for the API server",
    )  # fmt: skip
    parser.add_argument(
        "--node-cert-validity",
        type=duration,
        default=datetime.timedelta(days=365),
        help="lifetime of node certificates (edges rotate them at 80 %%), e.g. 365d",
    )
    _node_arguments(parser)
    parser.add_argument(
        "--status-interval",
        type=float,
        default=1.0,
        help="seconds between Device.status writes per device (reports in between coalesce)",
    )
    parser.add_argument(
        "--status-qps",
        type=float,
        default=100.0,
        help="Device.status writes per second for all devices together (bursts of twice that)",
    )
    parser.add_argument(
        "--workload-controllers",
        action="store_true",
        help="also schedule pods and run the DaemonSet and Deployment controllers (only for "
        "the embedded API server; a real cluster has its own)",
    )
    parser.add_argument(
        "--device-status", default="auto", choices=["auto", "devicestatus", "device"],
        help="where reported twins and state go: DeviceStatus objects (KubeEdge v1.23), "
        "Device.status (v1.15-v1.22), or (auto) DeviceStatus when the cluster serves it",
    )  # fmt: skip
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )


def _node_arguments(parser: argparse.ArgumentParser) -> None:
    """Heartbeat economics and fleet size (see the README's sizing section)."""
    parser.add_argument(
        "--node-lease-duration", "--node-grace", dest="node_lease_duration", type=float,
        default=40.0,
        help="seconds a node's Lease lasts: silent that long, its Ready becomes Unknown (40, "
        "as kubelet's; 120 for fleets beyond a few thousand nodes)",
    )  # fmt: skip
    parser.add_argument(
        "--node-lease-renew-interval", type=float,
        help="seconds between renewals of a node's Lease (a quarter of its duration)",
    )  # fmt: skip
    parser.add_argument(
        "--node-status-report-frequency", type=duration, default=datetime.timedelta(minutes=5),
        help="how often an unchanged Node status is written anyway (5m, as kubelet's)",
    )  # fmt: skip
    parser.add_argument(
        "--node-limit", type=int, default=0,
        help="edge node sessions this replica serves at most; more are refused with a retry "
        "hint (KubeEdge's nodeLimit; 0: no limit)",
    )  # fmt: skip
    parser.add_argument(
        "--leader-elect", action=argparse.BooleanOptionalAction, default=True,
        help="elect one replica for the node monitor and workload controllers (a Lease renewed "
        "every 2 s); --no-leader-elect when this is the only cloudcore",
    )  # fmt: skip
    parser.add_argument(
        "--identity", help="this replica's name in leader election (host name and a random id)"
    )


def add_token_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir", type=Path, required=True, help="cloudcore's state directory (its CA)"
    )
    parser.add_argument(
        "--ttl", type=duration, default=datetime.timedelta(hours=24), help="valid for (24h)"
    )
    parser.add_argument("--node", help="only this node may join with the token")
    parser.add_argument(
        "--allow-rejoin", action="store_true",
        help="without --node: may also join as a node that exists already (replacing it)",
    )  # fmt: skip
