"""What nodes send up, routed by (group, operation) to where it goes: device status into
Device.status (coalesced, then acked), heartbeats to the node lifecycle, pod status into
pods/status, log answers to CloudStream, CSRs to the certificate authority. Deliveries' acks and
resync requests go to Downstream. Status reports that arrive before the controllers listed
everything are held and replayed once they did (the node's ownership is not known before).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from cloudcore.downstream import Downstream
from cloudcore.hub import CloudHub
from cloudcore.join import NodeCertificates
from cloudcore.stream import CloudStream
from cloudcore.writes import ApiWrites
from controllers.conditions import notes_of
from controllers.desired import clean_desired, seen_versions
from controllers.devices import DeviceRouting
from controllers.nodes import NodeLifecycle
from controllers.pods import PodDelivery
from controllers.problems import DeviceProblems
from controllers.status import StatusWriter
from kedge.channel.message import Group, Message, Op
from kedge.channel.routes import CLOUD, Router, parse_key, twin_ack

log = logging.getLogger("kedge.cloudcore")
# what a node's status report carries for cloudcore, not for Device.status
EDGE_ONLY = frozenset({"desired", "unreached", "overruled", "errors"})


@dataclass
class Writers:
    """Where status goes: Device.status, edge desired values adopted, pods/status."""

    status: StatusWriter
    desired: StatusWriter
    pods: StatusWriter


class Upstream:
    def __init__(
        self,
        hub: CloudHub,
        downstream: Downstream,
        routing: DeviceRouting,
        writers: Writers,
        problems: DeviceProblems,
        lifecycle: NodeLifecycle,
        certificates: NodeCertificates,
        pods: PodDelivery,
        stream: CloudStream,
        writes: ApiWrites,
    ) -> None:
        self.hub, self.downstream, self.routing = hub, downstream, routing
        self.writers, self.problems, self.lifecycle = writers, problems, lifecycle
        self.certificates, self.pods, self.stream, self.writes = certificates, pods, stream, writes
        self.deferred: list[tuple[Message, str]] = []
        self.route = Router({
            (Group.RESOURCE, Op.ACK): downstream.on_ack,
            (Group.RESOURCE, Op.RESYNC): downstream.on_resync,
            (Group.TWIN, Op.UPDATE): self.device_status,
            (Group.NODE, Op.UPDATE): self.heartbeat,
            (Group.POD, Op.UPDATE): self.pod_status,
            (Group.POD, Op.RESPONSE): self.log_answer,
            (Group.TWIN, Op.RESPONSE): self.log_answer,
            (Group.CERTIFICATE, Op.ROTATE): self.rotate,
            (Group.STREAM, Op.UPDATE): stream.sessions.on_data,
            (Group.STREAM, Op.DELETE): stream.sessions.on_close,
        }, "cloud")  # fmt: skip

    async def __call__(self, node: str, message: Message) -> None:
        """CloudHub's handler: one message from `node`."""
        await self.route(message, node)

    async def replay(self) -> None:
        """The controllers listed everything: the reports held until then."""
        held, self.deferred = self.deferred, []
        for message, node in held:
            await self.device_status(message, node)

    async def device_status(self, message: Message, node: str) -> None:
        """A node's twin and state report: into Device.status (coalesced), then acked."""
        try:
            _, namespace, name = parse_key(message.resource, ("device",))
            if not isinstance(message.content, dict):
                raise ValueError("content must be an object")
        except ValueError as exc:
            log.warning("malformed status report: %s", exc, extra={"node": node})
            return
        if not self.downstream.synced:  # owners not known yet: hold it
            self.deferred.append((message, node))
            return
        key = (namespace, name)
        ack = twin_ack(message)

        async def acknowledge() -> None:
            await self.hub.send(node, ack)

        if self.routing.placed.get(key) != node:  # a node reports only its own devices
            log.warning("status for %s/%s refused: not bound to this node", *key,
                        extra={"node": node})  # fmt: skip
            await acknowledge()  # nothing to retry: drop it from the node's outbox
            return
        await self._store(key, message.content, node, acknowledge)

    async def _store(self, key: tuple[str, str], content: dict[str, object], node: str,
                     acknowledge: Callable[[], Awaitable[None]]) -> None:  # fmt: skip
        status = {k: v for k, v in content.items() if k not in EDGE_ONLY}
        try:
            desired = clean_desired(content.get("desired"))
        except ValueError as exc:
            log.warning("bad desired values in a report: %s", exc, extra={"node": node})
            desired = {}
        try:
            self.problems.note(key, notes_of(content))
        except ValueError as exc:
            log.warning("bad notes in a report: %s", exc, extra={"node": node})

        async def store_status() -> None:
            self.writers.status.report(key, status, acknowledge)  # acked once it is stored

        seen = seen_versions(self.routing.devices.get(key) or {})
        newer = {k: v for k, v in desired.items() if v.edge_count > seen.get(k, 0)}
        if newer:  # edge desired values the cloud has not seen: adopted first, then status
            self.writers.desired.report(key, newer, store_status)
        else:
            await store_status()

    async def heartbeat(self, message: Message, node: str) -> None:
        try:
            self.lifecycle.heartbeat(node, message.content, self.hub.address(node))
        except ValueError as exc:
            log.warning("bad heartbeat: %s", exc, extra={"node": node})
            await self.hub.send(node, message.reply(CLOUD, Op.RESPONSE, {"error": str(exc)}))

    async def pod_status(self, message: Message, node: str) -> None:
        """A node's report of one of its pods: written to pods/status, or, for a pod it stopped
        because of its deletionTimestamp, the deletion finished."""
        content = message.content
        try:
            _, namespace, name = parse_key(message.resource, ("pod",))
            if not isinstance(content, dict) or not isinstance(content.get("status"), dict):
                raise ValueError("content must hold a status object")
        except ValueError as exc:
            log.warning("malformed pod status: %s", exc, extra={"node": node})
            return
        key = (namespace, name)
        pod = self.pods.pods.get(key)
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
            await self.writes.finish_deletion(*key, str(meta["uid"]))
            return
        self.writers.pods.report(key, content["status"])

    async def log_answer(self, message: Message, node: str) -> None:
        """An answer to a query (a log, a history) sent to this node."""
        if not self.stream.on_response(message, node):
            log.info("late or foreign query answer dropped", extra={"node": node})

    async def rotate(self, message: Message, node: str) -> None:
        await self.hub.send(node, self.certificates.rotate(node, message))
