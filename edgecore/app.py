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
import os
import signal
from typing import Any

import uvicorn

from devicetwin.manifests import read_documents
from devicetwin.model import Device, DeviceId
from devicetwin.service import TwinService, now_ms, rfc3339
from devicetwin.spec import load_documents
from devicetwin.store import TwinStore
from edgecore.api import create_app, http_token
from edgecore.broker import LocalBroker
from edgecore.cloudlink import CloudLink
from edgecore.config import EdgeConfig
from edgecore.edged.logs import LogError, read_log
from edgecore.edged.manager import Edged
from edgecore.eventbus import EventBus
from edgecore.heartbeat import Heartbeat
from edgecore.hub import EdgeHub, client_context
from edgecore.identities import role_of
from edgecore.join import GROUP as CERT_GROUP
from edgecore.join import Rotator, ensure_joined
from edgecore.metamanager import MetaStore
from edgecore.metrics import EdgeMetrics
from edgecore.outbox import Outbox
from kedge import webserver
from kedge.channel.message import Message
from kedge.mqtt import MqttSettings
from kedge.process import private_state
from kedge.sealing import Sealer

log = logging.getLogger("kedge.edgecore")
DB_NAME = "edgecore.db"
META_DB = "meta.db"
OUTBOX_DB = "outbox.db"
INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "VIRTUAL_ENV")


async def _nothing(_devices: list[Device]) -> None:
    """CloudLink's adopt until the EventBus exists (replaced before the link connects)."""


def devices_by_protocol(service: TwinService) -> dict[str, list[str]]:
    """{protocol: device ids}: what the broker's ACL lets each protocol's mappers touch."""
    out: dict[str, list[str]] = {}
    for device in service.devices.values():
        out.setdefault(device.protocol, []).append(device.id)
    return out


def start_edged(
    config: EdgeConfig, link: CloudLink, mqtt: MqttSettings, broker: LocalBroker | None
) -> Edged:
    """Edged on the pods the store holds (they run offline too), told of every change. Each
    pod gets the broker identity of its role (a mapper's protocol, or an app)."""
    meta = link.meta
    base_env = {k: v for k, v in os.environ.items() if k in INHERITED_ENV}
    base_env |= {"KEDGE_NODE_NAME": config.node}

    def pod_env(pod: dict[str, Any]) -> dict[str, str]:
        settings = mqtt if broker is None else broker.identity(role_of(pod))
        return {"KEDGE_MQTT_URL": settings.url()}

    async def report(key: str, snapshot: dict[str, Any]) -> None:
        if link.hub is not None:
            await link.hub.send(Message(link.source, "pod", f"pod/{key}", "update", snapshot))

    edged = Edged(
        config.node,
        config.state_dir / "pods",
        lambda kind, ns, name: meta.get(f"{kind}/{ns}/{name}"),
        base_env,
        report,
        config.pod_backoff,
        pod_env,
    )

    async def on_workload(kind: str) -> None:
        if kind == "pod":
            await edged.sync(meta.objects("pod"))
        else:
            edged.config_changed()

    link.on_workload = on_workload
    return edged


def mapper_facts(service: TwinService) -> dict[str, Any]:
    """What the cloud needs for MapperAvailable: the protocols served here, and since when
    a protocol's mapper is gone."""
    lost = {p: rfc3339(ms) for p, ms in sorted(service.presence.lost.items())}
    return {"mappers": sorted(service.mappers), "mappersLost": lost}


def answer_log(edged: Edged, message: Message, source: str) -> Message:
    """The cloud asks for a container's log (`kubectl logs`): `log/<ns>/<pod>`."""
    query = message.content if isinstance(message.content, dict) else {}
    parts = message.resource.split("/")
    try:
        if len(parts) != 3 or parts[0] != "log":
            raise LogError(400, f"not a log query: {message.resource!r}")
        container = str(query.get("container") or "")
        path = edged.log_file(f"{parts[1]}/{parts[2]}", container, bool(query.get("previous")))
        return message.reply(source, "response", {"log": read_log(path, query)})
    except LogError as exc:
        return message.reply(source, "response", {"error": str(exc), "code": exc.code})


async def run_edgecore(config: EdgeConfig, stop: asyncio.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM (or `stop` is set), then shut down cleanly."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    private_state(config.state_dir)
    manifests = [doc for path in config.devices for doc in read_documents(path)]
    link, edged = None, None
    if config.cloud is not None:
        link = CloudLink(
            config.node,
            MetaStore(config.state_dir / META_DB, Sealer.in_dir(config.state_dir)),
            manifests,
            _nothing,
            Outbox(config.state_dir / OUTBOX_DB),
        )
        declared: list[Device] | None = link.declared()  # what the cloud sent before, too
    else:
        declared = load_documents(manifests, config.node, now_ms()) if config.devices else None
    store = TwinStore(config.state_dir / DB_NAME)
    service = TwinService(config.node, store, max_optional=config.max_optional_twins)
    metrics = EdgeMetrics()
    broker = None
    settings = config.mqtt
    if settings is None:
        broker = LocalBroker(config.state_dir, config.broker_port, config.node)
        settings = broker.prepare()
        await broker.start()
    bus = EventBus(service, settings, metrics)

    async def adopt(devices: list[Device]) -> None:
        events = await service.adopt(devices)
        if broker is not None:  # the ACL first, so that mappers may act on what they hear
            broker.refresh(devices_by_protocol(service))
        bus.publish(events)

    if declared is not None:
        await adopt(declared)
    elif broker is not None:
        broker.refresh(devices_by_protocol(service))
    server = webserver.Server(
        uvicorn.Config(
            create_app(
                service,
                bus,
                metrics,
                http_token(config.state_dir) if config.http_needs_token else None,
            ),
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
    if link is not None:
        assert config.cloud is not None and config.cloud_certs is not None
        assert config.join is not None
        certs, join_url = config.cloud_certs, config.join

        link.adopt = adopt
        link.lookup = lambda device_id: service.devices.get(DeviceId(device_id))
        service.watchers.append(link.mark)
        tasks.append(asyncio.create_task(link.upstream(), name="upstream"))
        edged = start_edged(config, link, settings, broker)
        tasks.append(asyncio.create_task(edged.run(link.meta.objects("pod")), name="edged"))

        async def from_cloud(message: Message) -> None:
            if message.group == "pod" and message.operation == "query":
                await hub.send(answer_log(edged, message, link.source))
                return
            handle = rotator.on_message if message.group == CERT_GROUP else link.on_message
            await handle(message)

        hub = EdgeHub(config.cloud, None, from_cloud, config.node)
        link.hub = hub

        async def on_connect() -> None:
            await link.on_connect()
            await edged.resend()

        hub.on_connect = on_connect
        rotator = Rotator(hub, config.node, certs)

        async def to_cloud() -> None:
            await ensure_joined(join_url, config.token, config.node, certs)
            hub.context = client_context(certs / "ca.crt", certs / "node.crt", certs / "node.key")
            heartbeat = Heartbeat(
                hub, config.node, config.heartbeat, config.labels, lambda: mapper_facts(service)
            )
            service.on_mappers = heartbeat.wake.set
            await asyncio.gather(hub.run(), rotator.run(), heartbeat.run())

        tasks.append(asyncio.create_task(to_cloud(), name="cloud"))
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
    if edged is not None:
        await edged.close()
    if broker is not None:
        metrics.broker_restarts.set(broker.restarts)
        await broker.stop()
    await service.close()
    store.close()
    if link is not None:
        link.meta.close()
        if link.outbox is not None:
            link.outbox.close()
    log.info("edgecore stopped", extra={"node": config.node})
    if failed:
        raise failed[0].exception()  # type: ignore[misc]
