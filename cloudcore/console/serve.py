"""`kedge console`: serve the web console; `kedge console token create`: a console token.

The console listens on loopback by default; on any other address it needs a TLS certificate
(tokens never cross a network in clear).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import ssl
import sys
from pathlib import Path

from aiohttp import web
from kubernetes import client
from kubernetes import config as kube_config

from cloudcore.console.access import ConsoleTokens, Role
from cloudcore.console.app import LIVE_MAX, build
from cloudcore.console.cluster import Cluster
from controllers.leanapi import LeanApi
from kedge.logs import setup_logging

log = logging.getLogger("kedge.console")
DEFAULT_PORT = 10090


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kubeconfig",
        type=Path,
        required=True,
        help="the console's own access to the cluster (reads, desired values)",
    )
    parser.add_argument("--state-dir", type=Path, default=Path(".kedge/console"),
                        help="where console tokens are kept (their SHA-256 only)")  # fmt: skip
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--tls-cert", type=Path, help="needed to listen beyond loopback")
    parser.add_argument("--tls-key", type=Path)
    parser.add_argument("--log-level", default="info")
    commands = parser.add_subparsers(dest="console_command")
    token = commands.add_parser("token", help="console tokens").add_subparsers(
        dest="token_command", required=True)  # fmt: skip
    create = token.add_parser("create", help="print a new console token (only its hash is kept)")
    create.add_argument("--role", choices=[r.value for r in Role], default=Role.VIEWER.value)
    create.add_argument("--name", required=True, help="who it is for (a new one replaces theirs)")


def _configuration(kubeconfig: Path) -> client.Configuration:
    configuration = client.Configuration()
    kube_config.load_kube_config(str(kubeconfig), client_configuration=configuration)
    return configuration


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


async def serve(args: argparse.Namespace) -> None:
    configuration = _configuration(args.kubeconfig)
    bearer = configuration.api_key.get("authorization", "")
    tokens = ConsoleTokens(args.state_dir, bearer.removeprefix("Bearer ") or None)
    api = LeanApi(configuration, connections=2 * LIVE_MAX + 16)  # two watches per live stream
    tls = None
    if args.tls_cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    # a page closed ends its live stream's handler (and its watches) at once
    runner = web.AppRunner(build(tokens, Cluster(api)), access_log=None, handler_cancellation=True)
    await runner.setup()
    try:
        await web.TCPSite(runner, args.host, args.port, ssl_context=tls).start()
        scheme = "https" if tls else "http"
        log.info("console serving on %s://%s:%d", scheme, args.host, args.port)
        await asyncio.Event().wait()  # until the process is stopped
    finally:
        await runner.cleanup()
        await api.close()


def run(args: argparse.Namespace) -> int:
    if args.console_command == "token":
        args.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        token = ConsoleTokens(args.state_dir).create(args.name, Role(args.role))
        print(token)  # noqa: T201 - the command's output: shown once, never stored
        return 0
    if not _loopback(args.host) and not args.tls_cert:
        why = "kedge console: --tls-cert and --tls-key are needed to listen beyond loopback"
        print(why, file=sys.stderr)  # noqa: T201 - the command's refusal
        return 2
    setup_logging(args.log_level)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))
    return 0
