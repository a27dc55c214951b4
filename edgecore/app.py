"""`kedge edgecore`: one edge node. This module only builds the parts and runs them: what the
cloud sends is routed in `edgecore.intake`, what goes up in `edgecore.upstream`, MQTT requests
in `devicetwin.service` through `edgecore.eventbus`.

Start-up order matters: manifests and stored objects are validated before anything is written,
so a bad file leaves the stored twins untouched; the broker is listening before the EventBus
connects; the HTTP API serves only once the twins are loaded.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from devicetwin.catalog import Catalog
from devicetwin.manifests import read_documents
from devicetwin.model import Device
from devicetwin.presence import MapperPresence
from devicetwin.retention import Retention
from devicetwin.service import TwinService, now_ms, rfc3339
from devicetwin.store import TwinStore
from edgecore.api import Failing, create_app, http_token
from edgecore.broker import LocalBroker
from edgecore.config import EdgeConfig
from edgecore.dmi import server as dmi_server
from edgecore.dmi.api import mapper_view
from edgecore.dmi.mappers import DmiMappers
from edgecore.dmi.server import DeviceManager
from edgecore.dmi.worker import DmiWorker
from edgecore.edged.cri.runtime import CriRuntime
from edgecore.edged.launch import PodRuntime, ProcessRuntime
from edgecore.edged.manager import Edged
from edgecore.eventbus import EventBus
from edgecore.heartbeat import Heartbeat
from edgecore.history import HistoryAnswers, history_view, keep_history
from edgecore.hub import EdgeHub, client_context
from edgecore.identities import role_of
from edgecore.intake import Intake
from edgecore.join import Rotator, ensure_joined
from edgecore.metamanager import MetaStore
from edgecore.metrics import EdgeMetrics
from edgecore.outbox import Outbox
from edgecore.streams import StreamHost
from edgecore.upstream import EdgeUpstream
from kedge import webserver
from kedge.channel.message import Group, Op
from kedge.channel.routes import Router
from kedge.grpcwire.server import GrpcServer
from kedge.mqtt import MqttSettings
from kedge.process import private_state
from kedge.sealing import Sealer
from kedge.tasks import Tasks

log = logging.getLogger("kedge.edgecore")
DB_NAME = "edgecore.db"
META_DB = "meta.db"
OUTBOX_DB = "outbox.db"
DMI_MAPPERS = "dmi-mappers.json"  # the DMI mappers registered here
INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "VIRTUAL_ENV")


def devices_by_protocol(service: TwinService) -> dict[str, list[str]]:
    """{protocol: device ids}: what the broker's ACL lets each protocol's mappers touch."""
    out: dict[str, list[str]] = {}
    for device in service.devices.values():
        out.setdefault(device.protocol, []).append(device.id)
    return out


def mapper_facts(presence: MapperPresence) -> dict[str, Any]:
    """What the cloud needs for MapperAvailable: the protocols served here, and since when
    a protocol's mapper is gone."""
    lost = {p: rfc3339(ms) for p, ms in sorted(presence.lost.items())}
    return {"mappers": sorted(presence.alive()), "mappersLost": lost}


@dataclass
class Twins:
    """The node's device side: twins, their store, the broker and the bus to the mappers."""

    store: TwinStore
    service: TwinService
    broker: LocalBroker | None
    mqtt: MqttSettings  # how edgecore reaches the broker
    bus: EventBus
    metrics: EdgeMetrics
    dmi: DmiMappers  # mappers on KubeEdge's DMI (gRPC), beside the MQTT ones
    dmi_server: GrpcServer | DmiWorker | None = None

    async def adopt(self, devices: list[Device]) -> None:
        """Make `devices` the node's set: twins, then the broker's ACL (so that mappers may act
        on what they hear), then the events."""
        events = await self.service.adopt(devices)
        self.refresh_acl()
        self.bus.publish(events)

    def refresh_acl(self) -> None:
        if self.broker is not None:
            self.broker.refresh(devices_by_protocol(self.service))

    async def serve_dmi(self, path: Path, worker: bool = False, log_level: str = "info") -> None:
        """DMI on `path`; `worker`: its gRPC served by a worker process (edgecore.dmi.front)."""
        manager = DeviceManager(self.service, self.dmi, self.bus.publish)
        if worker:
            handlers = list(dmi_server.methods(manager).values())
            self.dmi_server = DmiWorker(path, handlers, self.service.node, dmi_server.MAX_MESSAGE,
                                        log_level)  # fmt: skip
            await self.dmi_server.start()
        else:
            self.dmi_server = await dmi_server.serve(path, manager)
        await self.dmi.restore()
        log.info("DMI served", extra={"node": self.service.node, "socket": str(path),
                                      "worker": worker})  # fmt: skip

    async def close(self) -> None:
        if self.dmi_server is not None:
            await self.dmi_server.stop(1.0)
        await self.dmi.close()
        if self.broker is not None:
            self.metrics.broker_restarts.set(self.broker.restarts)
            await self.broker.stop()
        await self.service.close()
        self.store.close()


@dataclass
class Uplink:
    """The node's channel to the cloud and what goes up it (made before the twins, which tell
    it of every status change)."""

    hub: EdgeHub
    outbox: Outbox
    upstream: EdgeUpstream


@dataclass
class CloudSide:
    """The node's cloud-facing parts: what comes down, what goes up, its pods, its certificate."""

    uplink: Uplink
    meta: MetaStore
    intake: Intake
    edged: Edged
    rotator: Rotator
    heartbeat: Heartbeat
    streams: StreamHost
    history: HistoryAnswers

    def router(self) -> Router:
        """What the cloud sends, by (group, operation)."""
        return Router({
            (Group.RESOURCE, Op.UPDATE): self.intake.on_object,
            (Group.RESOURCE, Op.DELETE): self.intake.on_object,
            (Group.TWIN, Op.ACK): self.uplink.upstream.on_ack,
            (Group.POD, Op.QUERY): self.intake.log_query,
            (Group.CERTIFICATE, Op.RESPONSE): self.rotator.on_message,
            (Group.TWIN, Op.QUERY): self.history.on_query,
            (Group.STREAM, Op.INSERT): self.streams.on_open,
            (Group.STREAM, Op.UPDATE): self.streams.on_data,
            (Group.STREAM, Op.DELETE): self.streams.on_close,
        }, "edge")  # fmt: skip

    async def connected(self) -> None:
        """After every connect: ask for a resync, send the outbox and every pod's status;
        stream sessions of the previous connection end (their cloud side is gone)."""
        self.streams.close_all()
        await self.intake.resync()
        await self.uplink.upstream.send_outbox()
        await self.edged.resend()

    async def close(self) -> None:
        await self.edged.close()
        self.meta.close()
        self.uplink.outbox.close()


@dataclass
class Edge:
    config: EdgeConfig
    twins: Twins
    server: webserver.Server
    cloud: CloudSide | None


async def _twins(config: EdgeConfig, uplink: Uplink | None, mappers_changed: asyncio.Event
                 ) -> Twins:  # fmt: skip
    store = TwinStore(config.state_dir / DB_NAME)
    service = TwinService(config.node, store, max_optional=config.max_optional_twins,
                          on_status=uplink.upstream.changed if uplink else lambda _devices: None,
                          on_mappers=mappers_changed.set,
                          keep_history=config.history_max_age > 0)  # fmt: skip
    broker, settings = None, config.mqtt
    if settings is None:
        broker = LocalBroker(config.state_dir, config.broker_port, config.node,
                             config.broker_anonymous)  # fmt: skip
        settings = broker.prepare()
        await broker.start()
    metrics = EdgeMetrics()
    bus = EventBus(service, settings, metrics)
    dmi = DmiMappers(service, lambda: service.commit(service.take_batch()),
                     config.state_dir / DMI_MAPPERS)  # fmt: skip
    bus.observers.append(dmi.observe)
    return Twins(store, service, broker, settings, bus, metrics, dmi)


def _edged(config: EdgeConfig, twins: Twins, meta: MetaStore, uplink: Uplink,
           runtime: PodRuntime) -> Edged:  # fmt: skip
    """Edged on the pods the store holds (they run offline too). Each pod gets the broker
    identity of its role (a mapper's protocol, or an app); host processes also get the
    environment they need from edgecore's (a container has its image's)."""
    base_env = {"KEDGE_NODE_NAME": config.node}
    if isinstance(runtime, ProcessRuntime):
        base_env |= {k: v for k, v in os.environ.items() if k in INHERITED_ENV}

    def pod_env(pod: dict[str, Any]) -> dict[str, str]:
        broker = twins.broker
        settings = twins.mqtt if broker is None else broker.identity(role_of(pod))
        return {"KEDGE_MQTT_URL": settings.url()}

    return Edged(config.node, config.state_dir / "pods",
                 lambda kind, ns, name: meta.get(f"{kind}/{ns}/{name}"), base_env,
                 uplink.upstream.pod_status, config.pod_backoff, pod_env, runtime)  # fmt: skip


def _cloud_side(config: EdgeConfig, twins: Twins, meta: MetaStore, catalog: Catalog,
                uplink: Uplink, mappers_changed: asyncio.Event, runtime: PodRuntime
                ) -> CloudSide:  # fmt: skip
    assert config.cloud_certs is not None
    edged = _edged(config, twins, meta, uplink, runtime)
    hub, presence = uplink.hub, twins.service.presence
    return CloudSide(
        uplink, meta, Intake(config.node, meta, catalog, hub, twins.adopt, edged), edged,
        Rotator(hub, config.node, config.cloud_certs),
        Heartbeat(hub, config.node, config.heartbeat, config.labels,
                  lambda: mapper_facts(presence), mappers_changed),
        StreamHost(config.node, hub.send, edged),
        HistoryAnswers(config.node, twins.service, hub.send),
    )  # fmt: skip


def _http(config: EdgeConfig, twins: Twins, failing: Failing) -> webserver.Server:
    token = http_token(config.state_dir) if config.http_needs_token else None
    app = create_app(twins.service, twins.bus, twins.metrics, token, failing,
                     (mapper_view(twins.dmi), history_view(twins.service)))  # fmt: skip
    return webserver.Server(uvicorn.Config(
        app, host=config.http_host, port=config.http_port, log_config=None, access_log=False,
        lifespan="off",
    ))  # fmt: skip


async def assemble(config: EdgeConfig, failing: Failing) -> Edge:
    """Every part, wired through constructors; the twins hold the declared devices."""
    private_state(config.state_dir)
    manifests = [doc for path in config.devices for doc in read_documents(path)]
    runtime: PodRuntime = ProcessRuntime()
    if config.runtime == "cri" and config.cloud is not None:  # pods come from the cloud
        runtime = CriRuntime(config.state_dir, config.cri_endpoint, config.cri_images)
        await runtime.start()  # first: a failure leaves nothing else started
    meta = None
    if config.cloud is not None:
        meta = MetaStore(config.state_dir / META_DB, Sealer.in_dir(config.state_dir))
    # everything validated before anything is written: a bad file leaves the twins untouched
    catalog = Catalog(config.node, [*manifests, *(meta.documents() if meta else [])], now_ms())
    uplink, mappers_changed = None, asyncio.Event()
    if config.cloud is not None:
        hub = EdgeHub(config.cloud.split(","), config.node)
        outbox = Outbox(config.state_dir / OUTBOX_DB)
        uplink = Uplink(hub, outbox, EdgeUpstream(config.node, hub, outbox))
    twins = await _twins(config, uplink, mappers_changed)
    if meta is not None or config.devices:  # what the cloud sent before counts too
        await twins.adopt(catalog.bound())
    else:
        twins.refresh_acl()
    if config.dmi_socket is not None:
        await twins.serve_dmi(config.dmi_socket, config.dmi_worker, config.log_level)
    else:
        log.warning("DMI not served: %s", config.dmi_off_reason, extra={"node": config.node})
    cloud = None
    if meta is not None and uplink is not None:
        cloud = _cloud_side(config, twins, meta, catalog, uplink, mappers_changed, runtime)
    return Edge(config, twins, _http(config, twins, failing), cloud)


async def _to_cloud(edge: Edge) -> None:
    """Join (once), then keep the channel, the certificate and the heartbeat going."""
    config, cloud = edge.config, edge.cloud
    assert cloud is not None and config.join is not None and config.cloud_certs is not None
    certs = config.cloud_certs
    await ensure_joined(config.join, config.token, config.node, certs)
    cloud.uplink.hub.context = client_context(certs / "ca.crt", certs / "node.crt",
                                              certs / "node.key")  # fmt: skip
    await asyncio.gather(cloud.uplink.hub.run(cloud.router(), cloud.connected),
                         cloud.rotator.run(), cloud.heartbeat.run())  # fmt: skip


def _start(edge: Edge, tasks: Tasks) -> None:
    twins, cloud = edge.twins, edge.cloud
    tasks.start("eventbus", twins.bus.run)
    if twins.service.keep_history:
        retention = Retention(int(edge.config.history_max_age * 1000),
                              edge.config.history_max_points)  # fmt: skip
        tasks.start("history", lambda: keep_history(twins.service, retention))
    if twins.broker is not None:
        tasks.start("broker", twins.broker.supervise)
    if cloud is not None:
        tasks.start("upstream", cloud.uplink.upstream.run)
        tasks.start("edged", lambda: cloud.edged.run(cloud.meta.objects("pod")))
        tasks.start("cloud", lambda: _to_cloud(edge))


async def run_edgecore(config: EdgeConfig, stop: asyncio.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM (or `stop` is set), then shut down cleanly; a task that fails
    for good (a PermanentError) shuts down too and is raised."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks = Tasks("edgecore")
    edge = await assemble(config, tasks.failing)
    _start(edge, tasks)
    http = asyncio.create_task(edge.server.serve(), name="http")
    # Everything allocated so far lives as long as the process: keep the cyclic collector off
    # it, and collect less often (each update allocates many small, acyclic objects).
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
    log.info("edgecore started", extra={
        "node": config.node, "devices": len(edge.twins.service.devices),
        "http": f"http://{config.http_host}:{config.http_port}", "mqtt": edge.twins.mqtt.host,
    })  # fmt: skip
    stopper = asyncio.create_task(stop.wait())
    ends: list[asyncio.Future[Any]] = [http, stopper, tasks.fatal]
    await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
    edge.server.stop()
    failed: BaseException | None = None
    try:
        await http
    except Exception as exc:  # noqa: BLE001 - raised once everything is closed
        failed = exc
    stopper.cancel()
    await tasks.stop()
    if edge.cloud is not None:
        await edge.cloud.close()
    await edge.twins.close()
    log.info("edgecore stopped", extra={"node": config.node})
    if tasks.fatal.done():
        raise tasks.fatal.result()
    if failed is not None:
        raise failed
