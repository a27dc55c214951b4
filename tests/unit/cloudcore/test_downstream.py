"""What a replica sends a node: what the node lacks or holds older, never an older version,
deletions once everything is listed. The hub here records instead of sending (the channel
itself is tested in integration)."""

from __future__ import annotations

from typing import Any, cast

from cloudcore.downstream import Downstream
from cloudcore.hub import CloudHub
from kedge.channel.message import Message


class Recorder:
    def __init__(self, *nodes: str) -> None:
        self.sessions: dict[str, object] = {n: object() for n in nodes}
        self.sent: list[tuple[str, str, str, Any]] = []

    async def send(self, node: str, message: Message) -> bool:
        if node not in self.sessions:
            return False
        self.sent.append((node, message.resource, message.resource_version, message.content))
        return True


def _ack(rv: str) -> Message:
    return Message("edge", "resource", "device/default/a", "ack", resource_version=rv)


def _downstream(*nodes: str) -> tuple[Downstream, Recorder]:
    hub = Recorder(*nodes)
    return Downstream(cast(CloudHub, hub)), hub


async def test_a_resync_sends_only_what_the_node_lacks_or_holds_older() -> None:
    down, hub = _downstream("n1")
    await down.want("n1", "device/default/a", 5, {"v": 5})  # before the node listed: held back
    await down.want("n1", "device/default/b", 6, {"v": 6})
    await down.want("n1", "device/default/c", 7, {"v": 7})
    assert hub.sent == []
    await down.resync("n1", {"device/default/a": 5, "device/default/b": 4})
    assert [(k, rv) for _n, k, rv, _c in hub.sent] == [("device/default/b", "6"),
                                                     ("device/default/c", "7")]  # fmt: skip


async def test_newest_version_wins_and_a_node_elsewhere_gets_nothing() -> None:
    down, hub = _downstream("n1")
    await down.resync("n1", {})
    await down.want("n1", "device/default/a", 7, {"v": 7})
    await down.want("n1", "device/default/a", 6, {"v": 6})  # older: never sent
    await down.want("n2", "device/default/x", 3, {"v": 3})  # n2 is on another replica
    assert [(n, k, rv) for n, k, rv, _c in hub.sent] == [("n1", "device/default/a", "7")]


async def test_acks_count_as_held_so_a_moved_node_is_not_sent_it_again() -> None:
    down, hub = _downstream("n1")
    await down.resync("n1", {})
    await down.want("n1", "device/default/a", 7, {"v": 7})
    await down.on_ack(_ack("7"), "n1")
    assert down.held["n1"] == {"device/default/a": 7}
    other, other_hub = _downstream("n1")  # the node moves to another replica and lists
    await other.want("n1", "device/default/a", 7, {"v": 7})
    await other.resync("n1", {"device/default/a": 7})
    assert other_hub.sent == []


async def test_deletions_before_the_listing_wait_and_after_it_are_sent() -> None:
    down, hub = _downstream("n1")
    await down.want("n1", "device/default/a", 3, {"v": 3})
    await down.resync("n1", {"device/default/a": 3, "device/default/gone": 2})
    assert hub.sent == []  # not listed yet: "gone" may only be unknown so far
    await down.reconcile({"n1": {"device/default/a"}}, 10)
    assert hub.sent == [("n1", "device/default/gone", "10", None)]
    await down.want("n1", "device/default/a", 11, None)  # deleted while connected
    assert hub.sent[-1] == ("n1", "device/default/a", "11", None)
    await down.resync("n1", {"device/default/a": 11, "device/default/gone": 10})
    assert len(hub.sent) == 2  # its tombstones are what the cloud wants: nothing again
    await down.resync("n1", {"device/default/old": 4})  # held, unknown, after the listing
    assert hub.sent[-1] == ("n1", "device/default/old", "5", None)


async def test_a_malformed_ack_or_resync_changes_nothing() -> None:
    down, hub = _downstream("n1")
    await down.resync("n1", {})
    await down.on_ack(_ack("x"), "n1")
    await down.on_resync(Message("edge", "resource", "", "resync", {"versions": ["bad"]}), "n1")
    await down.on_resync(Message("edge", "resource", "", "resync", {"versions": {"k": "1"}}), "n1")
    assert down.held["n1"] == {} and hub.sent == []
