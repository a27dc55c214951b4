"""`kedge cloudcore`: CloudHub, the join service and the DeviceController, against any API
server by kubeconfig.

State dir: `pki/` (the cluster CA and the serving certificate of CloudHub and the join service;
node certificates are signed by this CA), `objectsync.db` (what each node must hold and has
confirmed), `tokens.db` (which node each join token was used by).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from typing import Any

import uvicorn
from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.client.exceptions import ApiException

from cloudcore.arguments import add_arguments
from cloudcore.downstream import Downstream
from cloudcore.hub import CloudHub, server_context
from cloudcore.join import GROUP as CERT_GROUP
from cloudcore.join import NodeCertificates
from cloudcore.objectsync import ObjectSync
from cloudcore.pki import ensure_certificates
from cloudcore.stream import CloudStream
from cloudcore.tokens import TOKENS_DB, JoinTokens
from controllers.apicall import write
from controllers.conditions import notes_of
from controllers.desired import Conflict, EdgeDesired, clean_desired, seen_versions
from controllers.device_controller import GROUP, VERSION, DeviceController
from controllers.nodes import STREAM_ANNOTATION, NodeLifecycle
from controllers.pods import PodDelivery, pod_status_urgent
from controllers.problems import DeviceProblems
from controllers.status import StatusWriter, desired_reached
from controllers.workloads import Workloads
from kedge import webserver
from kedge.channel.message import Message
from kedge.logs import setup_logging
from kedge.process import private_state
from kedge.sealing import Sealer

log = logging.getLogger("kedge.cloudcore")
# what a node's status report carries for cloudcore, not for Device.status
EDGE_ONLY = frozenset({"desired", "unreached", "overruled", "errors"})


async def serve(args: argparse.Namespace, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    private_state(args.state_dir)
    pki = args.state_dir / "pki"
    ca, crt, key = ensure_certificates(pki, ("127.0.0.1", "localhost", args.host))
    tokens = JoinTokens(pki, args.state_dir / TOKENS_DB)
    configuration = client.Configuration()
    kube_config.load_kube_config(str(args.kubeconfig), client_configuration=configuration)
    configuration.connection_pool_maxsize = 32  # a connection per informer, and the writers
    api = client.ApiClient(configuration)
    core = client.CoreV1Api(api)

    async def node_exists(name: str) -> bool:
        def read() -> bool:
            try:
                core.read_node(name, _preload_content=False).release_conn()
            except ApiException as exc:
                if exc.status == 404:
                    return False
                raise
            return True

        return await asyncio.to_thread(read)

    certificates = NodeCertificates(pki, tokens, args.node_cert_validity, node_exists)
    join_service = webserver.Server(
        uvicorn.Config(
            certificates.app(), host=args.host, port=args.join_port, ssl_certfile=str(crt),
            ssl_keyfile=str(key), log_config=None, access_log=False, lifespan="off",
        )
    )  # fmt: skip
    sync = ObjectSync(args.state_dir / "objectsync.db", Sealer.in_dir(args.state_dir))
    downstream: Downstream | None = None

    async def on_message(node: str, message: Message) -> None:
        assert downstream is not None
        if await downstream.on_message(node, message):
            return
        if message.group == "twin" and message.operation == "update":
            await report_status(node, message)
            return
        if message.group == "node" and message.operation == "update":
            try:
                lifecycle.heartbeat(node, message.content, hub.address(node))
            except ValueError as exc:
                log.warning("bad heartbeat: %s", exc, extra={"node": node})
                await hub.send(node, message.reply("cloudcore", "response", {"error": str(exc)}))
            return
        if message.group == "pod" and message.operation == "response":
            if not stream.on_response(message):
                log.info("late pod query answer dropped", extra={"node": node})
            return
        if message.group == "pod" and message.operation == "update":
            await pod_status(node, message)
            return
        if message.group == CERT_GROUP and message.operation == "rotate":
            await hub.send(node, certificates.rotate(node, message))
            return
        log.info("unhandled %s/%s", message.group, message.operation, extra={"node": node})

    async def report_status(node: str, message: Message) -> None:
        """A node's twin and state report: into Device.status (coalesced), then acked."""
        parts = message.resource.split("/")
        if len(parts) != 3 or parts[0] != "device" or not isinstance(message.content, dict):
            log.warning("malformed status report %r", message.resource, extra={"node": node})
            return
        if downstream is None or not downstream.synced:  # owners not known yet: hold it
            deferred.append((node, message))
            return
        key = (parts[1], parts[2])
        ack = Message(
            "cloudcore", "twin", message.resource, "ack",
            parent_id=message.msg_id, resource_version=message.resource_version,
        )  # fmt: skip

        async def acknowledge() -> None:
            await hub.send(node, ack)

        status = {k: v for k, v in message.content.items() if k not in EDGE_ONLY}
        try:
            desired = clean_desired(message.content.get("desired"))
        except ValueError as exc:
            log.warning("bad desired values in a report: %s", exc, extra={"node": node})
            desired = {}
        if controller.routing.placed.get(key) != node:  # a node reports only its own devices
            log.warning("status for %s/%s refused: not bound to this node", *key,
                        extra={"node": node})  # fmt: skip
            await acknowledge()  # nothing to retry: drop it from the node's outbox
            return
        try:
            problems.note(key, notes_of(message.content))
        except ValueError as exc:
            log.warning("bad notes in a report: %s", exc, extra={"node": node})

        async def store_status() -> None:
            writer.report(key, status, acknowledge)  # acked once it is stored

        seen = seen_versions(controller.routing.devices.get(key) or {})
        newer = {k: v for k, v in desired.items() if v[1] > seen.get(k, 0)}
        if newer:  # edge desired values the cloud has not seen: adopted first, then status
            desired_writer.report(key, newer, store_status)
        else:
            await store_status()

    async def pod_status(node: str, message: Message) -> None:
        """A node's report of one of its pods: written to pods/status, or, for a pod it stopped
        because of its deletionTimestamp, the deletion finished."""
        parts, content = message.resource.split("/"), message.content
        if (
            len(parts) != 3
            or not isinstance(content, dict)
            or not isinstance(content.get("status"), dict)
        ):
            log.warning("malformed pod status %r", message.resource, extra={"node": node})
            return
        key = (parts[1], parts[2])
        pod = pods.pods.get(key)
        meta = (pod or {}).get("metadata") or {}
        if (
            pod is None
            or (pod.get("spec") or {}).get("nodeName") != node
            or meta.get("uid") != content.get("uid")
        ):
            log.info("status for pod %s/%s dropped: not this node's (any more)", *key,
                     extra={"node": node})  # fmt: skip
            return
        if content.get("gone"):
            await asyncio.to_thread(finish_deletion, key[0], key[1], str(meta["uid"]))
            return
        pod_writer.report(key, content["status"])

    hub = CloudHub(on_message, server_context(ca, crt, key))
    downstream = Downstream(hub, sync)
    controller = DeviceController(api, downstream.want)
    pods = PodDelivery(api, downstream.want)

    def node_of(namespace: str, name: str) -> str | None:
        node = str((pods.pods.get((namespace, name)) or {}).get("spec", {}).get("nodeName") or "")
        return node if node in pods.edge_nodes else None

    stream = CloudStream(hub, node_of)
    stream_service = webserver.Server(
        uvicorn.Config(
            stream.app(), host=args.host, port=args.stream_port, ssl_certfile=str(crt),
            ssl_keyfile=str(key), log_config=None, access_log=False, lifespan="off",
        )
    )  # fmt: skip
    stream_url = f"https://{args.host}:{args.stream_port}"
    lifecycle = NodeLifecycle(api, args.node_grace, {STREAM_ANNOTATION: stream_url})
    custom = client.CustomObjectsApi(api)

    def write_status(namespace: str, name: str, status: dict[str, Any]) -> None:
        write(custom.patch_namespaced_custom_object_status,
              GROUP, VERSION, namespace, "devices", name, {"status": status})  # fmt: skip

    writer = StatusWriter(write_status, args.status_interval, desired_reached, args.status_qps)

    def write_pod_status(namespace: str, name: str, status: dict[str, Any]) -> None:
        try:
            write(core.patch_namespaced_pod_status, name, namespace,
                  [{"op": "add", "path": "/status", "value": status}])  # fmt: skip
        except ApiException as exc:
            if exc.status != 404:  # a pod deleted meanwhile has no status to write
                raise

    def finish_deletion(namespace: str, name: str, uid: str) -> None:
        try:
            write(core.delete_namespaced_pod, name, namespace,
                  body={"gracePeriodSeconds": 0, "preconditions": {"uid": uid}})  # fmt: skip
        except ApiException as exc:
            if exc.status not in (404, 409):
                log.warning("pod %s/%s not deleted: %s", namespace, name, exc.reason)

    pod_writer = StatusWriter(write_pod_status, 1.0, pod_status_urgent, args.status_qps)

    def replaced(namespace: str, name: str, conflicts: list[Conflict]) -> None:
        """From the adoption thread: cloud values the edge's won over before it saw them."""
        loop.call_soon_threadsafe(problems.overrule, (namespace, name), conflicts)

    desired_writer = StatusWriter(EdgeDesired(api, replaced).write, args.status_interval)

    def record_event(event: dict[str, Any]) -> None:
        write(core.create_namespaced_event, event["metadata"]["namespace"], event)

    problems = DeviceProblems(
        controller.routing,
        lifecycle.facts,
        StatusWriter(write_status, 1.0, qps=args.status_qps),
        record_event,
    )
    deferred: list[tuple[str, Message]] = []

    listed: dict[str, int] = {}
    background: list[asyncio.Task[None]] = []

    async def synced(source: str, rv: int) -> None:
        """After a full list by both controllers: take back what nodes should no longer hold."""
        listed[source] = rv
        if set(listed) != {"devices", "pods"}:
            return
        expected = controller.expected()
        for node, keys in pods.keys().items():
            expected.setdefault(node, set()).update(keys)
        await downstream.reconcile(expected, max(listed.values()))
        held, deferred[:] = list(deferred), []
        for node, message in held:
            await report_status(node, message)

    async def devices_synced(_expected: dict[str, set[str]], rv: int) -> None:
        await synced("devices", rv)

    async def pods_synced(rv: int) -> None:
        await synced("pods", rv)

    controller.on_synced, pods.on_synced = devices_synced, pods_synced
    await hub.start(args.host, args.port)
    controller.start(loop)
    pods.start(loop)
    runner = asyncio.create_task(controller.run(), name="device controller")
    pods_task = asyncio.create_task(pods.run(), name="pod delivery")
    pod_status_task = asyncio.create_task(pod_writer.run(), name="pod status writer")
    workloads = Workloads(api) if args.workload_controllers else None
    if workloads is not None:
        workloads.start(loop)
        background.append(asyncio.create_task(workloads.run(), name="workload controllers"))
    status_task = asyncio.create_task(writer.run(), name="status writer")
    nodes_task = asyncio.create_task(lifecycle.run(), name="node lifecycle")
    problems_task = asyncio.create_task(
        problems.run(lambda: downstream.synced and lifecycle.loaded), name="device conditions"
    )
    conditions_task = asyncio.create_task(problems.writer.run(), name="condition writer")
    desired_task = asyncio.create_task(desired_writer.run(), name="edge desired writer")
    join_task = asyncio.create_task(join_service.serve(), name="join service")
    stream_task = asyncio.create_task(stream_service.serve(), name="cloudstream")
    log.info("cloudcore started", extra={"cloudhub": f"wss://{args.host}:{args.port}",
             "join": f"https://{args.host}:{args.join_port}"})  # fmt: skip
    try:
        await asyncio.wait(
            [asyncio.create_task(stop.wait()), join_task, stream_task],
            return_when=asyncio.FIRST_COMPLETED,
        )
    finally:
        join_service.should_exit = stream_service.should_exit = True
        with contextlib.suppress(Exception):
            await join_task
        with contextlib.suppress(Exception):
            await stream_task
        for task in (runner, status_task, nodes_task, problems_task, conditions_task, desired_task,
                     pods_task, pod_status_task, *background):  # fmt: skip
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        stoppers = [controller.stop, pods.stop] + ([workloads.stop] if workloads else [])
        await asyncio.gather(*(asyncio.to_thread(stop_one) for stop_one in stoppers))
        await hub.stop()
        sync.close()
        tokens.close()
        api.close()
        log.info("cloudcore stopped")


def run(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)
    asyncio.run(serve(args))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kedge cloudcore", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))
