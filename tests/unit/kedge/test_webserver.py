"""The quiet uvicorn server: it checks for shutdown once a TICK, but `stop()` ends it at once."""

from __future__ import annotations

import asyncio

import pytest
import uvicorn
from starlette.applications import Starlette

from harness.support import free_port, port_open, wait_until
from kedge import webserver


async def test_stop_when_called_ends_the_server_before_the_next_tick(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(webserver, "TICK", 300.0)  # a tick this long would hold the stop
    port = free_port()
    config = uvicorn.Config(Starlette(), host="127.0.0.1", port=port, log_config=None,
                            lifespan="off")  # fmt: skip
    server = webserver.Server(config)
    serving = asyncio.create_task(server.serve())
    await wait_until(lambda: port_open(port), within=10, what="the server listening")
    server.stop()
    await asyncio.wait_for(serving, 10)
    assert not port_open(port)
