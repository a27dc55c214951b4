"""Which mappers are alive on this node. Pure.

Each mapper process keeps a retained message on `$hw/events/node/<node>/mappers/<instance>`
(`{"protocol": "modbus", "since": ms}`) and leaves an MQTT last will that empties it, so the
broker tells the edge the moment a mapper dies (and an edgecore starting later still learns
who is alive). A protocol whose last instance is gone is "lost" until an instance returns.
Mappers that only ask `membership/get` (KubeEdge's own) are known by that and never lost.
"""

from __future__ import annotations

import re
from typing import Any

from devicetwin.rules import TwinError

_INSTANCE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_PROTOCOL = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def parse_presence(instance: str, body: dict[str, Any] | None) -> str | None:
    """The protocol an instance announces, None when it is gone; TwinError when malformed."""
    if not _INSTANCE.match(instance):
        raise TwinError(400, f"invalid mapper instance {instance!r}")
    if body is None:
        return None
    protocol = body.get("protocol")
    if not isinstance(protocol, str) or not _PROTOCOL.match(protocol):
        raise TwinError(400, "a mapper's presence needs a 'protocol' name")
    return protocol


class MapperPresence:
    def __init__(self) -> None:
        self.instances: dict[str, str] = {}  # instance -> protocol
        self.asked: set[str] = set()  # protocols whose mappers asked for their devices
        self.lost: dict[str, int] = {}  # protocol -> when its last instance went (ms)

    def alive(self) -> set[str]:
        return set(self.instances.values()) | self.asked

    def update(self, instance: str, protocol: str | None, now: int) -> str | None:
        """Record an instance arriving (protocol) or leaving (None); returns the protocol that
        has just lost its last mapper, if any."""
        if protocol is not None:
            self.instances[instance] = protocol
            self.lost.pop(protocol, None)
            return None
        gone = self.instances.pop(instance, None)
        if gone is None or gone in self.instances.values():
            return None
        self.asked.discard(gone)  # its membership request came from the instance now gone
        self.lost[gone] = now
        return gone
