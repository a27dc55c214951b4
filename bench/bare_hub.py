"""The baseline for `bench.nodes`: a bare websockets server with the same TLS (mutual, same CA
and certificates) that accepts connections and drops every frame. What any hub costs at least."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from cloudcore.hub import server_context


async def _drain(connection: ServerConnection) -> None:
    with contextlib.suppress(ConnectionClosed):  # the load generator is killed at the end
        async for _frame in connection:
            pass


async def main_async(args: argparse.Namespace) -> None:
    context = server_context(args.ca, args.crt, args.key)
    async with serve(_drain, "127.0.0.1", args.port, ssl=context, ping_interval=15,
                     ping_timeout=15):  # fmt: skip
        await asyncio.Event().wait()  # until killed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--crt", required=True)
    parser.add_argument("--key", required=True)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
