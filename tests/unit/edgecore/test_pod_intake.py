"""Pods from the cloud are checked before they are stored: a malformed one is answered with an
error and leaves the store untouched; a good one is stored, acked and handed to edged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edgecore.cloudlink import CloudLink
from edgecore.edged.manager import PodError, check_pod
from edgecore.metamanager import MetaStore
from kedge.channel.message import Message

CONTAINERS = [{"name": "c", "image": "kedge/python"}]
GOOD = {"metadata": {"name": "p", "namespace": "default"},
        "spec": {"nodeName": "n1", "containers": CONTAINERS}}  # fmt: skip


class Sent:
    """Where the link's replies go (the channel itself is tested in test_channel)."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def send(self, message: Message) -> bool:
        self.messages.append(message)
        return True


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ([], "must be an object"),
        ({"spec": {"containers": []}}, "metadata.name"),
        ({"metadata": {"name": "p"}, "spec": {}}, "spec.containers"),
        ({"metadata": {"name": "p"}, "spec": {"containers": [{}]}}, "needs a name"),
        ({**GOOD, "spec": {**GOOD["spec"], "nodeName": "n2"}}, "not to this node"),
    ],
)
def test_bad_pods_are_refused(body: Any, why: str) -> None:
    with pytest.raises(PodError, match=why):
        check_pod(body, "n1")


async def test_link_refuses_a_bad_pod_and_stores_a_good_one(tmp_path: Path) -> None:
    store = MetaStore(tmp_path / "meta.db")
    link = CloudLink("n1", store, [], adopt=lambda devices: None)  # type: ignore[arg-type,return-value]
    sent, seen = Sent(), []
    link.hub = sent  # type: ignore[assignment]

    async def on_workload(kind: str) -> None:
        seen.append(kind)

    link.on_workload = on_workload
    bad = Message("cloudcore", "resource", "pod/default/p", "update", {"metadata": {}},
                  resource_version="5")  # fmt: skip
    await link.on_message(bad)
    assert store.objects("pod") == [] and seen == []
    assert "metadata.name" in sent.messages[-1].content["error"]
    good = Message("cloudcore", "resource", "pod/default/p", "update", GOOD, resource_version="6")
    await link.on_message(good)
    assert store.objects("pod") == [GOOD] and seen == ["pod"]
    assert sent.messages[-1].operation == "ack"
