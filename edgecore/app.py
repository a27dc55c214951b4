"""Wire one edge node: twin store and service, optional local mosquitto, EventBus, HTTP API.

Start-up order matters: manifests are validated before anything is written, so a bad file
leaves the stored twins untouched; the broker is listening before the EventBus connects; the
HTTP API serves only once the twins are loaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal

import uvicorn

from devicetwin.manifests import load_manifests
from devicetwin.service import TwinService, now_ms
from devicetwin.store import TwinStore
from edgecore.api import create_app
from edgecore.broker import LocalBroker
from edgecore.config import EdgeConfig
from edgecore.eventbus import EventBus
from edgecore.metrics import EdgeMetrics

log = logging.getLogger("kedge.edgecore")
DB_NAME = "edgecore.db"


async def run_edgecore(config: EdgeConfig, stop: asyncio.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM (or `stop` is set), then shut down cleanly."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    declared = load_manifests(config.devices, config.node, now_ms()) if config.devices else None
    store = TwinStore(config.state_dir / DB_NAME)
    service = TwinService(config.node, store)
    metrics = EdgeMetrics()
    broker = None
    settings = config.mqtt
    if settings is None:
        broker = LocalBroker(config.state_dir, config.broker_port, config.node)
        settings = broker.prepare()
        await broker.start()
    bus = EventBus(service, settings, metrics)
    if declared is not None:
        bus.publish(await service.adopt(declared))
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(service, bus, metrics),
            host=config.http_host,
            port=config.http_port,
            log_config=None,
            access_log=False,
            lifespan="off",
        )
    )
    tasks = [
        asyncio.create_task(bus.run(), name="eventbus"),
        asyncio.create_task(server.serve(), name="http"),
    ]
    if broker is not None:
        tasks.append(asyncio.create_task(broker.supervise(), name="broker"))
    # Everything allocated so far lives as long as the process: keep the cyclic collector off
    # it, and collect less often (each update allocates many small, acyclic objects).
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
    log.info(
        "edgecore started",
        extra={
            "node": config.node,
            "devices": len(service.devices),
            "http": f"http://{config.http_host}:{config.http_port}",
            "mqtt": settings.host,
        },
    )
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
    failed = [t for t in done if t is not stopper and t.exception() is not None]
    server.should_exit = True
    for task in tasks:
        if task.get_name() != "http":
            task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    stopper.cancel()
    if broker is not None:
        metrics.broker_restarts.set(broker.restarts)
        await broker.stop()
    await service.close()
    store.close()
    log.info("edgecore stopped", extra={"node": config.node})
    if failed:
        raise failed[0].exception()  # type: ignore[misc]
