"""DMI's gRPC front, a worker process (`edgecore --dmi-worker`): it owns the DMI socket, speaks
HTTP/2 to the mappers and relays each call to edgecore over an inherited socket (see
kedge.grpcwire.relay), where DeviceManager answers it. HTTP/2 framing and HPACK cost about as
much CPU as storing the report itself; here that work runs on another core.

Started by edgecore only: `python -m edgecore.dmi.front --socket PATH --fd N --node NAME`.
It ends when edgecore closes its end (or dies), answering calls still waiting UNAVAILABLE.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
from pathlib import Path

from kedge.dmi import MANAGER_METHODS
from kedge.grpcwire.relay import Front
from kedge.grpcwire.server import GrpcServer, clear_stale
from kedge.logs import setup_logging

log = logging.getLogger("kedge.dmi")
GRACE = 1.0  # seconds calls in flight get once edgecore is gone


async def serve(path: Path, fd: int, max_message: int, node: str) -> None:
    loop = asyncio.get_running_loop()
    front = Front()
    await loop.connect_accepted_socket(lambda: front, socket.socket(fileno=fd))
    handlers = {name: front.handler(i) for i, (name, _) in enumerate(MANAGER_METHODS)}
    server = GrpcServer(handlers, max_message=max_message)
    await server.start(path)
    front.listening()
    log.info("DMI front listening", extra={"node": node, "socket": str(path), "pid": os.getpid()})
    await front.closed
    await server.stop(GRACE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--socket", type=Path, required=True)
    parser.add_argument("--fd", type=int, required=True, help="the socket to edgecore")
    parser.add_argument("--max-message", type=int, default=1 << 20)
    parser.add_argument("--node", default="")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args()
    setup_logging(args.log_level)
    clear_stale(args.socket)  # left by a killed worker or edgecore
    asyncio.run(serve(args.socket, args.fd, args.max_message, args.node))


if __name__ == "__main__":
    main()
