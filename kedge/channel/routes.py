"""The channel contract between cloudcore and edgecore: which messages exist, how their resources
are spelled, and the routing both sides do by (group, operation). Pure.

    downstream (cloud -> edge)                     upstream (edge -> cloud)
    resource/update|delete  objects to hold        resource/ack       an object stored
    twin/ack                a status report stored resource/resync    what the node holds
    pod/query               a container's log      resource/response  an object refused
    twin/query              a property's history   twin/response      a history answer
    stream/insert           open a stream session  stream/update      a session's output
    stream/update           a session's input      stream/delete      a session ended
    certificate/response    a rotated certificate  twin/update        a device's status
    node/response           a heartbeat refused    node/update        the heartbeat
                                                   pod/update         a pod's status
                                                   pod/response       a log answer
                                                   certificate/rotate a new CSR

Object keys are `<kind>/<namespace>/<name>` (`device`, `devicemodel`, `pod`, `configmap`,
`secret`); a device's status is `device/<namespace>/<name>`; a log query `log/<ns>/<pod>`;
a node's own messages `node/<node>`; a stream session (`kubectl logs -f`, `exec`)
`stream/<session id>`, its data base64 on a numbered channel (Kubernetes' remotecommand channels:
0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize). Each message has a builder here, so neither
side spells one.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from kedge.channel.message import Group, Message, Op

log = logging.getLogger("kedge.channel")
CLOUD = "cloudcore"  # the cloud's source name
# the Device annotation that records the edge desired-write counts the cloud has adopted
EDGE_VERSIONS = "devices.kedge.io/edge-desired-versions"
OBJECT_KINDS = ("device", "devicemodel", "pod", "configmap", "secret")
DEVICE_KINDS = ("device", "devicemodel")


def edge_source(node: str) -> str:
    return f"edge/{node}"


def object_key(kind: str, namespace: str, name: str) -> str:
    return f"{kind}/{namespace}/{name}"


def parse_key(resource: str, kinds: tuple[str, ...]) -> tuple[str, str, str]:
    """(kind, namespace, name) of `<kind>/<namespace>/<name>`; ValueError when it is not one."""
    parts = resource.split("/")
    if len(parts) != 3 or parts[0] not in kinds or not parts[1] or not parts[2]:
        raise ValueError(f"{resource!r} is not <{'|'.join(kinds)}>/<namespace>/<name>")
    return parts[0], parts[1], parts[2]


def kind_of(resource: str) -> str:
    return resource.split("/", 1)[0]


# ---- downstream --------------------------------------------------------------------------


def object_change(key: str, rv: int, body: dict[str, Any] | None) -> Message:
    """An object the node must hold at version `rv` (`body` None: must no longer hold)."""
    operation = Op.DELETE if body is None else Op.UPDATE
    return Message(CLOUD, Group.RESOURCE, key, operation, body, resource_version=str(rv))


def twin_ack(report: Message) -> Message:
    """A node's status report is stored (the node drops it from its outbox)."""
    return Message(CLOUD, Group.TWIN, report.resource, Op.ACK, parent_id=report.msg_id,
                   resource_version=report.resource_version)  # fmt: skip


def log_query(namespace: str, pod: str, query: dict[str, Any]) -> Message:
    return Message(CLOUD, Group.POD, f"log/{namespace}/{pod}", Op.QUERY, query)


def history_query(namespace: str, device: str, query: dict[str, Any]) -> Message:
    """A device property's history (`query`: property, since, until, step as the edge API)."""
    return Message(CLOUD, Group.TWIN, f"history/{namespace}/{device}", Op.QUERY, query)


def stream_open(session: str, kind: str, namespace: str, pod: str, params: dict[str, Any]
                ) -> Message:  # fmt: skip
    """Open a session of `kind` (logs, exec) on a pod's container; `params` say how."""
    return Message(CLOUD, Group.STREAM, f"stream/{session}", Op.INSERT,
                   {"kind": kind, "namespace": namespace, "pod": pod, **params})  # fmt: skip


def stream_data(source: str, session: str, channel: int, data: bytes) -> Message:
    """Bytes on a session's channel, either way."""
    return Message(source, Group.STREAM, f"stream/{session}", Op.UPDATE,
                   {"channel": channel, "data": base64.b64encode(data).decode()})  # fmt: skip


def stream_close(source: str, session: str, status: dict[str, Any] | None = None) -> Message:
    """The session ended (`status`: a metav1.Status for the error channel, from the edge)."""
    return Message(source, Group.STREAM, f"stream/{session}", Op.DELETE, status or {})


def stream_frame(message: Message) -> tuple[str, int, bytes]:
    """(session, channel, data) of a stream/update; ValueError when it is not one."""
    session = message.resource.removeprefix("stream/")
    content = message.content if isinstance(message.content, dict) else {}
    channel, data = content.get("channel"), content.get("data")
    if not session or not isinstance(channel, int) or not 0 <= channel <= 255:
        raise ValueError("a stream frame needs a session and a channel 0-255")
    if not isinstance(data, str):
        raise ValueError("a stream frame's data must be base64 text")
    try:
        return session, channel, base64.b64decode(data, validate=True)
    except ValueError as exc:
        raise ValueError("a stream frame's data is not base64") from exc


# ---- upstream ----------------------------------------------------------------------------


def object_ack(node: str, change: Message) -> Message:
    return Message(edge_source(node), Group.RESOURCE, change.resource, Op.ACK, None,
                   parent_id=change.msg_id, resource_version=change.resource_version)  # fmt: skip


def resync(node: str, versions: dict[str, int]) -> Message:
    """After a connect: the versions the node holds (the cloud sends what is newer or missing)."""
    return Message(edge_source(node), Group.RESOURCE, "", Op.RESYNC, {"versions": versions})


def twin_report(node: str, device_id: str, seq: int, status: dict[str, Any]) -> Message:
    """A device's status; `seq` is its outbox entry, echoed in the ack."""
    return Message(edge_source(node), Group.TWIN, f"device/{device_id}", Op.UPDATE, status,
                   resource_version=str(seq))  # fmt: skip


def heartbeat(node: str, report: dict[str, Any]) -> Message:
    return Message(edge_source(node), Group.NODE, f"node/{node}", Op.UPDATE, report)


def pod_status(node: str, key: str, snapshot: dict[str, Any]) -> Message:
    """`key` is `<namespace>/<name>`."""
    return Message(edge_source(node), Group.POD, f"pod/{key}", Op.UPDATE, snapshot)


def certificate_request(node: str, csr_pem: str) -> Message:
    return Message(edge_source(node), Group.CERTIFICATE, f"node/{node}", Op.ROTATE,
                   {"csr": csr_pem})  # fmt: skip


# ---- routing -----------------------------------------------------------------------------

Handler = Callable[..., Awaitable[None]]


class Router:
    """Messages to handlers by (group, operation); anything else is logged and dropped."""

    def __init__(self, routes: Mapping[tuple[Group, Op], Handler], side: str) -> None:
        """`routes`: {(Group, Op): handler(message, *context)}."""
        self.routes: dict[tuple[str, str], Handler] = {(g.value, o.value): h
                                                       for (g, o), h in routes.items()}  # fmt: skip
        self.side = side

    async def __call__(self, message: Message, *context: Any) -> None:
        handler = self.routes.get((message.group, message.operation))
        if handler is None:
            log.info("unhandled %s/%s on the %s side", message.group, message.operation,
                     self.side, extra={"resource": message.resource})  # fmt: skip
            return
        await handler(message, *context)
