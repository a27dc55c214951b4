"""Events the twin service hands to its transports: (topic, payload) pairs, and the membership
events of a change of the node's device set. Pure.
"""

from __future__ import annotations

from typing import NamedTuple

from devicetwin import payloads
from devicetwin.membership import MembershipChange
from devicetwin.model import Device
from devicetwin.topics import membership_updated_topic


class Outbound(NamedTuple):
    topic: str
    payload: bytes


def membership_events(node: str, change: MembershipChange, now: int) -> list[Outbound]:
    """KubeEdge's membership/updated for everyone, and each protocol's changes, with the
    devices' specs, on its own topic."""
    if not (change.added or change.removed or change.updated):
        return []
    body = payloads.membership_updated(now, change.added, change.removed, change.updated, False)
    events = [Outbound(membership_updated_topic(node), body)]
    protocols = {d.protocol for d in (*change.added, *change.removed, *change.updated)}
    for protocol in sorted(p for p in protocols if payloads.PROTOCOL.match(p)):

        def ours(devices: list[Device], protocol: str = protocol) -> list[Device]:
            return [d for d in devices if d.protocol == protocol]

        body = payloads.membership_updated(
            now, ours(change.added), ours(change.removed), ours(change.updated), True
        )
        events.append(Outbound(membership_updated_topic(node, protocol), body))
    return events
