"""Edge nodes register as Nodes through cloudcore, renew their Lease (the Node itself is written
only when its status changes), and turn Unknown with the unreachable taints after the lease
duration without heartbeats, and Ready again without them when they return (real processes,
kubectl)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.cloud import CloudProcess, running_cloud
from harness.support import Mosquitto, wait_for


@pytest.fixture
def impatient(tmp_path: Path) -> Iterator[CloudProcess]:
    """A cloud that gives nodes 3 s without heartbeats before marking them Unknown."""
    with running_cloud(tmp_path, "--node-lease-duration", "3") as cloud:
        yield cloud


def _ready(cloud: CloudProcess) -> dict[str, Any] | None:
    node = cloud.get("node", "edge-node-1")
    conditions = (node or {}).get("status", {}).get("conditions", [])
    return next((c for c in conditions if c["type"] == "Ready"), None)


def _unreachable(cloud: CloudProcess) -> set[str]:
    taints = ((cloud.get("node", "edge-node-1") or {}).get("spec") or {}).get("taints") or []
    return {t["effect"] for t in taints if t["key"] == "node.kubernetes.io/unreachable"}


def _renewed(cloud: CloudProcess) -> str:
    lease = cloud.get("lease", "edge-node-1", "-n", "kube-node-lease")
    return str((lease or {}).get("spec", {}).get("renewTime"))


def test_edge_node_registers_renews_its_lease_and_goes_unknown_when_silent(
    tmp_path: Path, impatient: CloudProcess, broker: Mosquitto
) -> None:
    cloud = impatient
    edge = cloud.edge(tmp_path / "edge", broker.url)
    edge.extra += ["--heartbeat", "0.5", "--labels", "site=lab,tier=edge"]
    edge.start()
    try:
        wait_for(lambda: (_ready(cloud) or {}).get("status") == "True", timeout=30,
                 what="the node registered and Ready")  # fmt: skip
        node = cloud.get("node", "edge-node-1")
        assert node is not None
        labels = node["metadata"]["labels"]
        assert labels["site"] == "lab" and labels["kubernetes.io/hostname"] == "edge-node-1"
        assert "node-role.kubernetes.io/edge" in labels
        status = node["status"]
        assert int(status["capacity"]["cpu"]) >= 1 and status["allocatable"]["pods"] == "110"
        assert {"type": "InternalIP", "address": "127.0.0.1"} in status["addresses"]
        assert status["nodeInfo"]["kubeletVersion"].startswith("v1.")
        listed = cloud.apiserver.kubectl("get", "nodes").stdout
        assert "edge-node-1   Ready    edge" in listed
        lease = cloud.get("lease", "edge-node-1", "-n", "kube-node-lease")
        assert lease is not None and lease["spec"]["holderIdentity"] == "edge-node-1"
        assert lease["spec"]["leaseDurationSeconds"] == 3
        written = node["metadata"]["resourceVersion"]
        for _ in range(3):  # heartbeats every 0.5 s renew the lease, and leave the Node be
            renewed = _renewed(cloud)
            wait_for(lambda r=renewed: _renewed(cloud) != r, timeout=10,  # type: ignore[misc]
                     what="the lease renewed")  # fmt: skip
        assert (cloud.get("node", "edge-node-1") or {})["metadata"]["resourceVersion"] == written
        assert _unreachable(cloud) == set()
        was = _ready(cloud)
        edge.kill()  # no goodbye: heartbeats just stop
        wait_for(lambda: (_ready(cloud) or {}).get("status") == "Unknown", timeout=20,
                 what="Ready=Unknown after the grace period")  # fmt: skip
        unknown = _ready(cloud)
        assert unknown is not None and unknown["reason"] == "NodeStatusUnknown"
        assert unknown["lastHeartbeatTime"] >= (was or {})["lastHeartbeatTime"]
        assert "NotReady" in cloud.apiserver.kubectl("get", "nodes").stdout
        wait_for(lambda: _unreachable(cloud) == {"NoSchedule", "NoExecute"}, timeout=10,
                 what="the unreachable taints on the silent node")  # fmt: skip
        edge.start()
        wait_for(lambda: (_ready(cloud) or {}).get("status") == "True", timeout=30,
                 what="Ready again once heartbeats return")  # fmt: skip
        wait_for(lambda: _unreachable(cloud) == set(), timeout=10,
                 what="the unreachable taints gone once Ready")  # fmt: skip
    finally:
        edge.stop()
