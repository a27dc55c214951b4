"""The MQTT topic contract (KubeEdge v1.17+ layout, device id `<namespace>/<name>`). Pure.

$hw/events/device/<ns>/<name>/twin/update           mapper/app -> edge
$hw/events/device/<ns>/<name>/twin/update/result    edge -> app
$hw/events/device/<ns>/<name>/twin/update/delta     edge -> mapper
$hw/events/device/<ns>/<name>/twin/update/document  edge -> apps
$hw/events/device/<ns>/<name>/twin/get[/result]     app <-> edge
$hw/events/device/<ns>/<name>/state/update[/result] mapper <-> edge
$hw/events/node/<node>/membership/get[/result]      app <-> edge (KubeEdge's fields)
$hw/events/node/<node>/membership/updated           edge -> apps (KubeEdge's fields)
$hw/events/node/<node>/membership/get/result/<p>    edge -> the mappers of protocol <p>: the
$hw/events/node/<node>/membership/updated/<p>         same, with each device's merged spec
$hw/events/node/<node>/mappers/<p>/<instance>       mapper -> edge (retained; emptied by its will)

The merged specs (addresses, and credentials in configData) go only to topics scoped to their
protocol, so that a broker ACL can let each mapper read its own protocol's devices and no more.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache

from devicetwin.model import DeviceId, device_id

ALL = "$hw/#"
DEVICE_PREFIX = "$hw/events/device/"
NODE_PREFIX = "$hw/events/node/"
ANY_DEVICE = DeviceId("+/+")  # a device id that is an MQTT pattern (for subscriptions, ACLs)
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\Z")


class Action(Enum):
    TWIN_UPDATE = "twin/update"
    TWIN_GET = "twin/get"
    STATE_UPDATE = "state/update"


_ACTIONS = {action.value: action for action in Action}


# Topics the edge itself publishes under the device prefix: seen on the bus, never requests.
_OUTBOUND_SUFFIXES = ("/result", "/delta", "/document")


class TopicError(Exception):
    """A device topic that does not parse; the reply goes to `reply_topic`."""

    def __init__(self, reason: str, reply_topic: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.reply_topic = reply_topic


@dataclass(frozen=True, slots=True)
class DeviceTopic:
    device: DeviceId
    action: Action


@lru_cache(maxsize=8192)
def parse_device_topic(topic: str) -> DeviceTopic | None:
    """Parse a request topic; None for edge-published topics, TopicError for malformed ones.

    Cached: a node sees the same few hundred topics over and over.
    """
    if topic.endswith(_OUTBOUND_SUFFIXES) or not topic.startswith(DEVICE_PREFIX):
        return None
    reply = topic + "/result"
    parts = topic[len(DEVICE_PREFIX) :].split("/")
    if len(parts) >= 3 and "/".join(parts[1:]) in _ACTIONS:
        raise TopicError(
            f"topic {topic!r} names no namespace: device ids are <namespace>/<name>", reply
        )
    if len(parts) < 4:
        raise TopicError(
            f"topic {topic!r} does not parse: expected {DEVICE_PREFIX}"
            "<namespace>/<name>/<twin/update|twin/get|state/update>",
            reply,
        )
    namespace, name, action = parts[0], parts[1], "/".join(parts[2:])
    if action not in _ACTIONS:
        raise TopicError(f"unknown action {action!r} in topic {topic!r}", reply)
    for label, value in (("namespace", namespace), ("name", name)):
        if not _NAME.match(value):
            raise TopicError(f"invalid {label} {value!r} in topic {topic!r}", reply)
    return DeviceTopic(device_id(namespace, name), _ACTIONS[action])


def request_subscriptions() -> list[str]:
    """KubeEdge's request patterns plus malformed shapes that deserve an error reply.

    None overlaps another, and none matches what the edge publishes (one level deeper).
    """
    return [
        f"{DEVICE_PREFIX}+/+/twin/+",  # twin/update, twin/get, unknown twin actions
        f"{DEVICE_PREFIX}+/+/state/+",  # state/update, unknown state actions
        f"{DEVICE_PREFIX}+/twin/+",  # pre-1.17 layout without a namespace
        f"{DEVICE_PREFIX}+/state/+",
        f"{DEVICE_PREFIX}+/+",  # no action at all
    ]


@lru_cache(maxsize=16384)
def device_topic(device: DeviceId, suffix: str) -> str:
    """Cached: the reply topics of a device are built for every update it sends."""
    return f"{DEVICE_PREFIX}{device}/{suffix}"


def twin_update_topic(device: DeviceId) -> str:
    return device_topic(device, "twin/update")


def twin_get_topic(device: DeviceId) -> str:
    return device_topic(device, "twin/get")


def state_update_topic(device: DeviceId) -> str:
    return device_topic(device, "state/update")


def device_subtree(device: DeviceId | None = None) -> str:
    """Every topic of `device` (of every device when None), for ACLs."""
    return f"{DEVICE_PREFIX}#" if device is None else f"{DEVICE_PREFIX}{device}/#"


def parse_delta_topic(topic: str) -> DeviceId | None:
    """The device a `.../twin/update/delta` topic is about; None for any other topic."""
    if not topic.startswith(DEVICE_PREFIX) or not topic.endswith("/twin/update/delta"):
        return None
    parts = topic[len(DEVICE_PREFIX) :].split("/")
    return device_id(parts[0], parts[1]) if len(parts) == 5 else None


def update_result_topic(device: DeviceId) -> str:
    return device_topic(device, "twin/update/result")


def delta_topic(device: DeviceId) -> str:
    return device_topic(device, "twin/update/delta")


def document_topic(device: DeviceId) -> str:
    return device_topic(device, "twin/update/document")


def get_result_topic(device: DeviceId) -> str:
    return device_topic(device, "twin/get/result")


def state_result_topic(device: DeviceId) -> str:
    return device_topic(device, "state/update/result")


def membership_get_topic(node: str) -> str:
    return f"{NODE_PREFIX}{node}/membership/get"


def membership_result_topic(node: str, protocol: str | None = None) -> str:
    base = f"{NODE_PREFIX}{node}/membership/get/result"
    return base if protocol is None else f"{base}/{protocol}"


def membership_updated_topic(node: str, protocol: str | None = None) -> str:
    base = f"{NODE_PREFIX}{node}/membership/updated"
    return base if protocol is None else f"{base}/{protocol}"


def mapper_presence_topic(node: str, protocol: str, instance: str) -> str:
    """Where a mapper instance keeps its retained "alive" message (kedge's extension)."""
    return f"{NODE_PREFIX}{node}/mappers/{protocol}/{instance}"


def mapper_presence_subscription(node: str) -> str:
    return mapper_presence_topic(node, "+", "+")


def parse_presence_topic(node: str, topic: str) -> tuple[str, str] | None:
    """(protocol, instance) text of `node`'s presence topic (unchecked); None for any other."""
    prefix = f"{NODE_PREFIX}{node}/mappers/"
    if not topic.startswith(prefix):
        return None
    protocol, _, instance = topic[len(prefix) :].partition("/")
    return protocol, instance
