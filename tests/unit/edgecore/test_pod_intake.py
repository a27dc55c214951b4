"""Pods from the cloud are checked before they are stored: a malformed one is answered with an
error and leaves the store untouched; a good one is stored, acked and handed to edged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devicetwin.catalog import Catalog
from edgecore.edged.manager import PodError, check_pod
from edgecore.intake import Intake
from edgecore.metamanager import MetaStore
from kedge.channel.message import Message

CONTAINERS = [{"name": "c", "image": "kedge/python"}]
GOOD = {"metadata": {"name": "p", "namespace": "default"},
        "spec": {"nodeName": "n1", "containers": CONTAINERS}}  # fmt: skip


class Sent:
    """Where the intake's replies go (the channel itself is tested in test_channel)."""

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


class Workloads:
    """What edged is told (edged itself is tested in test_edged)."""

    def __init__(self) -> None:
        self.told: list[str] = []

    async def sync(self, pods: list[dict[str, Any]]) -> None:
        self.told.append("pod")

    def config_changed(self) -> None:
        self.told.append("config")

    def log_file(self, key: str, container: str, previous: bool) -> Path | None:
        return None


async def test_intake_refuses_a_bad_pod_and_stores_a_good_one(tmp_path: Path) -> None:
    store = MetaStore(tmp_path / "meta.db")
    sent, workloads = Sent(), Workloads()

    async def adopt(devices: list[Any]) -> None:
        raise AssertionError("no devices here")

    intake = Intake("n1", store, Catalog("n1", [], 0), sent, adopt, workloads)  # type: ignore[arg-type]
    bad = Message("cloudcore", "resource", "pod/default/p", "update", {"metadata": {}},
                  resource_version="5")  # fmt: skip
    await intake.on_object(bad)
    assert store.objects("pod") == [] and workloads.told == []
    assert "metadata.name" in sent.messages[-1].content["error"]
    good = Message("cloudcore", "resource", "pod/default/p", "update", GOOD, resource_version="6")
    await intake.on_object(good)
    assert store.objects("pod") == [GOOD] and workloads.told == ["pod"]
    assert sent.messages[-1].operation == "ack"
