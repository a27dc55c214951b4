"""Channel messages: KubeEdge's header/route/content model, as JSON text frames. Pure.

    {"header": {"msg_id", "parent_msg_id", "timestamp", "resourceversion", "sync"},
     "route": {"source", "group", "resource", "operation"},
     "content": <any JSON>}

`group` and `operation` are the enums below; `resource` names what the message is about
(see `kedge.channel.routes` for which messages exist and how their resources are spelled).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson


class Group(StrEnum):
    RESOURCE = "resource"
    TWIN = "twin"
    NODE = "node"
    POD = "pod"
    CERTIFICATE = "certificate"
    STREAM = "stream"


class Op(StrEnum):
    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"
    QUERY = "query"
    RESPONSE = "response"
    ACK = "ack"
    KEEPALIVE = "keepalive"
    RESYNC = "resync"
    ROTATE = "rotate"


OPERATIONS = frozenset(Op)
MAX_FRAME = 4 * 1024 * 1024


class FrameError(ValueError):
    """A frame that is not a channel message (the message says what is wrong)."""


@dataclass(frozen=True, slots=True)
class Message:
    source: str
    group: str
    resource: str
    operation: str
    content: Any = None
    msg_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    parent_id: str = ""
    timestamp: int = field(default_factory=lambda: time.time_ns() // 1_000_000)
    resource_version: str = ""
    sync: bool = False

    def reply(self, source: str, operation: str, content: Any = None) -> Message:
        return Message(source, self.group, self.resource, operation, content, parent_id=self.msg_id)

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "header": {
                    "msg_id": self.msg_id,
                    "parent_msg_id": self.parent_id,
                    "timestamp": self.timestamp,
                    "resourceversion": self.resource_version,
                    "sync": self.sync,
                },
                "route": {
                    "source": self.source,
                    "group": self.group,
                    "resource": self.resource,
                    "operation": self.operation,
                },
                "content": self.content,
            }
        )


def _text(part: dict[str, Any], key: str, where: str, required: bool = True) -> str:
    value = part.get(key, "")
    if not isinstance(value, str) or (required and not value):
        raise FrameError(f"{where}.{key} must be a non-empty string")
    return value


def decode(frame: bytes | str) -> Message:
    if len(frame) > MAX_FRAME:
        raise FrameError(f"frame of {len(frame)} bytes is larger than {MAX_FRAME}")
    try:
        body = orjson.loads(frame)
    except orjson.JSONDecodeError as exc:
        raise FrameError(f"frame is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise FrameError("frame is not a JSON object")
    header, route = body.get("header"), body.get("route")
    if not isinstance(header, dict) or not isinstance(route, dict):
        raise FrameError("frame needs header and route objects")
    operation = _text(route, "operation", "route")
    if operation not in OPERATIONS:
        known = sorted(o.value for o in Op)
        raise FrameError(f"route.operation {operation!r} is not one of {known}")
    timestamp = header.get("timestamp", 0)
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise FrameError("header.timestamp must be an integer (ms)")
    return Message(
        source=_text(route, "source", "route"),
        group=_text(route, "group", "route"),
        resource=_text(route, "resource", "route", required=False),
        operation=operation,
        content=body.get("content"),
        msg_id=_text(header, "msg_id", "header"),
        parent_id=_text(header, "parent_msg_id", "header", required=False),
        timestamp=timestamp,
        resource_version=_text(header, "resourceversion", "header", required=False),
        sync=bool(header.get("sync", False)),
    )
