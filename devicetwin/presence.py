"""Which mappers are alive on this node. Pure.

Each mapper process keeps a retained message on
`$hw/events/node/<node>/mappers/<protocol>/<instance>` (`{"since": ms}`) and leaves an MQTT last
will that empties it, so the broker tells the edge the moment a mapper dies (and an edgecore
starting later still learns who is alive). A protocol whose last instance is gone is "lost"
until an instance returns.
Mappers that only ask `membership/get` (KubeEdge's own) are known by that and never lost.
"""

from __future__ import annotations

import re

from devicetwin.rules import TwinError

_INSTANCE = re.compile(r"^[A-Za-z0-9._-]{1,128}\Z")
_PROTOCOL = re.compile(r"^[A-Za-z0-9._-]{1,64}\Z")


def parse_presence(protocol: str, instance: str, alive: bool) -> str | None:
    """The protocol an instance is alive for (from its topic), None when it is gone;
    TwinError when the topic is malformed."""
    if not _INSTANCE.match(instance):
        raise TwinError(400, f"invalid mapper instance {instance!r}")
    if not _PROTOCOL.match(protocol):
        raise TwinError(400, f"invalid mapper protocol {protocol!r}")
    return protocol if alive else None


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
