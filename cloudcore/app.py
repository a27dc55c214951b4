"""`kedge cloudcore`: CloudHub, the join service and the DeviceController, against any API
server by kubeconfig. This module only builds the parts and runs them; what arrives from nodes
is routed in `cloudcore.upstream`, what goes to them in `cloudcore.downstream`.

State dir: `pki/` (the cluster CA and the serving certificate of CloudHub and the join service;
node certificates are signed by this CA), `tokens.db` (which node each join token was used
by). Replicas share the CA (the same `pki/`); nothing else in the state dir is replica state:
what nodes must hold and hold is in the API server and on the nodes (see `downstream`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from kubernetes import client
from kubernetes import config as kube_config
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from cloudcore.arguments import add_arguments
from cloudcore.devicestatus import DeviceStatusWrites
from cloudcore.downstream import Downstream, Listings
from cloudcore.history import HistoryQueries
from cloudcore.hub import CloudHub, server_context
from cloudcore.join import NodeCertificates
from cloudcore.pki import ensure_certificates
from cloudcore.stream import CloudStream
from cloudcore.tokens import TOKENS_DB, JoinTokens
from cloudcore.upstream import Upstream, Writers
from cloudcore.writes import ApiWrites
from controllers.desired import Conflict, EdgeDesired
from controllers.device_controller import DeviceController
from controllers.devices import DeviceRouting
from controllers.leader import LeaderElection
from controllers.leanapi import LeanApi
from controllers.nodemonitor import NodeMonitor
from controllers.nodes import STREAM_ANNOTATION, NodeLifecycle, NodeTiming
from controllers.nodeview import NodeView
from controllers.pods import PodDelivery, pod_status_urgent
from controllers.problems import DeviceProblems
from controllers.status import StatusWriter, desired_reached, threaded
from controllers.workloads import Workloads
from kedge import webserver
from kedge.heap import keep_frozen
from kedge.logs import log_gc_pauses, setup_logging
from kedge.process import private_state
from kedge.tasks import Tasks

log = logging.getLogger("kedge.cloudcore")


@dataclass
class Cloud:
    """cloudcore's parts, built by `build` and run by `serve`."""

    args: argparse.Namespace
    api: client.ApiClient
    hub: CloudHub
    upstream: Upstream
    downstream: Downstream
    tokens: JoinTokens
    servers: list[webserver.Server]
    controller: DeviceController
    pods: PodDelivery
    lifecycle: NodeLifecycle
    problems: DeviceProblems
    writers: Writers
    lean: LeanApi
    view: NodeView
    singletons: Singletons


def _api(kubeconfig: Path | None) -> client.ApiClient:
    """The API server from `kubeconfig`, or, without one, the pod's service account (as a
    Deployment in the cluster)."""
    configuration = client.Configuration()
    if kubeconfig is None:
        kube_config.load_incluster_config(client_configuration=configuration)
    else:
        kube_config.load_kube_config(str(kubeconfig), client_configuration=configuration)
    configuration.connection_pool_maxsize = 32  # a connection per informer, and the writers
    return client.ApiClient(configuration)


def _server(app: Starlette, args: argparse.Namespace, port: int, tls: tuple[Path, Path],
            client_ca: str | None = None) -> webserver.Server:  # fmt: skip
    """`client_ca`: only clients with a certificate it signed are served."""
    clients: dict[str, Any] = {}
    if client_ca is not None:
        clients = {"ssl_ca_certs": client_ca, "ssl_cert_reqs": ssl.CERT_REQUIRED}
    return webserver.Server(
        uvicorn.Config(
            app, host=args.host, port=port, ssl_certfile=str(tls[0]), ssl_keyfile=str(tls[1]),
            log_config=None, access_log=False, lifespan="off", **clients,
        )
    )  # fmt: skip


def _stream_server(app: Starlette, args: argparse.Namespace, api: client.ApiClient,
                   tls: tuple[Path, Path]) -> list[webserver.Server]:  # fmt: skip
    """CloudStream runs commands in edge pods: it serves only the API server, whose client
    certificate its CA signed (kube-apiserver's kubelet client); without a CA, not at all."""
    client_ca = api.configuration.ssl_ca_cert
    if not client_ca:
        log.warning("the API server has no CA: logs and exec of edge pods are not served")
        return []
    return [_server(app, args, args.stream_port, tls, str(client_ca))]


def _health(failing: Callable[[], dict[str, str]]) -> Route:
    """`/healthz` on the join port: 503 naming the supervised tasks that failed lately."""

    async def healthz(_request: Request) -> JSONResponse:
        failed = failing()
        body = {"status": "degraded" if failed else "ok", "failingTasks": failed}
        return JSONResponse(body, 503 if failed else 200)

    return Route("/healthz", healthz, methods=["GET"])


@dataclass
class Singletons:
    """What runs on one replica only, while it holds the leader Lease."""

    election: LeaderElection
    monitor: NodeMonitor
    workloads: Callable[[], Workloads] | None  # made afresh each time leadership is won

    async def lead(self) -> None:
        work = [self.monitor.run()]
        workloads = self.workloads() if self.workloads is not None else None
        if workloads is not None:
            workloads.start(asyncio.get_running_loop())
            work.append(workloads.run())
        try:
            await asyncio.gather(*work)
        finally:
            if workloads is not None:
                await asyncio.to_thread(workloads.stop)


def _timing(args: argparse.Namespace) -> NodeTiming:
    lease = args.node_lease_duration
    renew = args.node_lease_renew_interval or lease / 4
    return NodeTiming(lease, renew, args.node_status_report_frequency.total_seconds())


def _problems(args: argparse.Namespace, hub: CloudHub, view: NodeView,
              election: LeaderElection, routing: DeviceRouting, statuses: DeviceStatusWrites,
              writes: ApiWrites) -> DeviceProblems:  # fmt: skip
    def serves(node: str) -> bool:
        """Device conditions: this replica's nodes; the leader's, nodes connected nowhere."""
        return node in hub.sessions or (election.leading and view.facts(node)[0] != "True")

    problems = DeviceProblems(routing, view.facts,
                              StatusWriter(statuses.conditions, 1.0, qps=args.status_qps),
                              writes.event, serves)  # fmt: skip
    view.listeners.append(problems.touch_node)
    hub.on_come.append(problems.touch_node)
    hub.on_gone.append(problems.touch_node)
    election.on_change.append(lambda _leading: problems.touch_all())
    return problems


def _writers(args: argparse.Namespace, api: client.ApiClient, statuses: DeviceStatusWrites,
             writes: ApiWrites, problems: DeviceProblems) -> Writers:  # fmt: skip
    loop = asyncio.get_running_loop()

    def overruled(namespace: str, name: str, found: list[Conflict]) -> None:
        """From the adoption thread: cloud values the edge's won over before it saw them."""
        loop.call_soon_threadsafe(problems.overrule, (namespace, name), found)

    return Writers(
        StatusWriter(statuses.status, args.status_interval, desired_reached, args.status_qps),
        StatusWriter(threaded(EdgeDesired(api, overruled).write), args.status_interval),
        StatusWriter(writes.pod_status, 1.0, pod_status_urgent, args.status_qps),
    )


def build(args: argparse.Namespace, tasks: Tasks) -> Cloud:
    """Every part, wired through constructors (call on the event loop that will run them)."""
    private_state(args.state_dir)
    pki = args.state_dir / "pki"
    hosts = ("127.0.0.1", "localhost", args.host, *filter(None, args.cert_hosts.split(",")))
    ca, crt, key = ensure_certificates(pki, hosts)
    api, tokens = _api(args.kubeconfig), JoinTokens(pki, args.state_dir / TOKENS_DB)
    lean, view = LeanApi(api.configuration), NodeView(api)
    writes = ApiWrites(api, lean)

    async def node_exists(name: str) -> bool:
        return await asyncio.to_thread(writes.node_exists, name)

    certificates = NodeCertificates(pki, tokens, args.node_cert_validity, node_exists)
    hub = CloudHub(server_context(ca, crt, key), args.node_limit)
    downstream = Downstream(hub)
    controller, pods = DeviceController(api, downstream.want), PodDelivery(api, downstream.want)
    stream = CloudStream(hub, pods.node_of)
    history = HistoryQueries(stream, lambda ns, name: controller.routing.placed.get((ns, name)))
    stream_url = f"https://{args.host}:{args.stream_port}"
    lifecycle = NodeLifecycle(lean, view, _timing(args), {STREAM_ANNOTATION: stream_url})
    hub.on_gone += [downstream.gone, lifecycle.gone]
    identity = args.identity or f"{socket.gethostname()}_{uuid.uuid4()}"
    election = LeaderElection(lean, "kube-system", "kedge-cloudcore", identity)
    statuses = DeviceStatusWrites(
        api, lean, args.device_status, lambda ns, name: controller.routing.devices.get((ns, name))
    )
    problems = _problems(args, hub, view, election, controller.routing, statuses, writes)
    writers = _writers(args, api, statuses, writes, problems)
    upstream = Upstream(hub, downstream, controller.routing, writers, problems, lifecycle,
                        certificates, pods, stream, writes)  # fmt: skip
    listings = Listings(downstream, lambda: _expected(controller, pods), upstream.replay)
    controller.on_synced = lambda _expected, rv: listings.listed("devices", rv)
    pods.on_synced = lambda rv: listings.listed("pods", rv)
    join_app = Starlette(routes=[*certificates.routes(), _health(tasks.failing)])
    servers = [_server(join_app, args, args.join_port, (crt, key)),
               *_stream_server(stream.app([history.route()]), args, api, (crt, key))]  # fmt: skip
    workloads = (lambda: Workloads(api)) if args.workload_controllers else None
    singletons = Singletons(election, NodeMonitor(api, lean, view, args.node_lease_duration),
                            workloads)  # fmt: skip
    return Cloud(args, api, hub, upstream, downstream, tokens, servers, controller, pods,
                 lifecycle, problems, writers, lean, view, singletons)  # fmt: skip


def _expected(controller: DeviceController, pods: PodDelivery) -> dict[str, set[str]]:
    """What every node must hold: its devices and models, its pods and what they use."""
    expected = controller.expected()
    for node, keys in pods.keys().items():
        expected.setdefault(node, set()).update(keys)
    return expected


def _start(cloud: Cloud, tasks: Tasks) -> None:
    loop = asyncio.get_running_loop()
    cloud.controller.start(loop)
    cloud.pods.start(loop)
    cloud.view.start(loop)
    singletons = cloud.singletons
    work = {
        "device controller": cloud.controller.run, "pod delivery": cloud.pods.run,
        "status writer": cloud.writers.status.run, "pod status writer": cloud.writers.pods.run,
        "edge desired writer": cloud.writers.desired.run, "node heartbeats": cloud.lifecycle.run,
        "condition writer": cloud.problems.writer.run,
        "device conditions": lambda: cloud.problems.run(
            lambda: cloud.downstream.synced and cloud.view.synced.is_set()),
        "leader election": lambda: singletons.election.run(singletons.lead,
                                                           cloud.args.leader_elect),
        "heap": keep_frozen,
    }  # fmt: skip
    for name, run in work.items():
        tasks.start(name, run)


async def serve(args: argparse.Namespace, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()

    tasks = Tasks("cloudcore")
    cloud = build(args, tasks)

    def stopping(sig: signal.Signals) -> None:
        """The sessions end here, not after the loop's queue: under 10,000 sessions it held
        the stop's first step back for seconds."""
        log.info("cloudcore stopping", extra={"signal": sig.name})  # when the stop was asked
        cloud.hub.cut()
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping, sig)
    await cloud.hub.start(args.host, args.port, cloud.upstream)
    _start(cloud, tasks)
    served = [asyncio.create_task(s.serve(), name="https") for s in cloud.servers]
    log.info("cloudcore started", extra={"cloudhub": f"wss://{args.host}:{args.port}",
             "join": f"https://{args.host}:{args.join_port}"})  # fmt: skip
    stopper = asyncio.create_task(stop.wait())
    ends: list[asyncio.Future[Any]] = [stopper, tasks.fatal, *served]
    try:
        await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        await _stop(cloud, tasks, served)
    if tasks.fatal.done():  # a task failed for good: the process's supervisor sees the error
        raise tasks.fatal.result()


async def _stop(cloud: Cloud, tasks: Tasks, served: list[asyncio.Task[None]]) -> None:
    """Sessions first (their nodes move to another replica at once), then the rest; how long
    each step took is logged, as a stop under load is a target (issue 18: 10k sessions < 5 s)."""
    took: dict[str, float] = {}
    began = time.monotonic()

    def step(name: str) -> None:
        nonlocal began
        took[name] = round(time.monotonic() - began, 3)
        began = time.monotonic()

    for server in cloud.servers:
        server.stop()
    await cloud.hub.stop()
    step("sessions")
    for task in served:
        with contextlib.suppress(Exception):
            await task
    step("https")
    await tasks.stop()
    step("tasks")
    await cloud.singletons.election.release()
    stoppers = [cloud.controller.stop, cloud.pods.stop, cloud.view.stop]
    await asyncio.gather(*(asyncio.to_thread(stop_one) for stop_one in stoppers))
    step("informers")
    await cloud.lean.close()
    cloud.tokens.close()
    cloud.api.close()
    step("clients")
    log.info("cloudcore stopped", extra={"seconds": took})


def run(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)
    log_gc_pauses(log)
    asyncio.run(serve(args))
    log.info("cloudcore exiting")  # after the event loop's own teardown (tasks, executor)
    # stopped cleanly: everything is closed and nothing is left to write; freeing the objects
    # of thousands of sessions one by one at interpreter exit took seconds (measured: 10 s at
    # 10,000 nodes), so the process ends here
    logging.shutdown()
    os._exit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kedge cloudcore", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))
