"""kedge's mapper DaemonSet, unchanged, as real containers: images built here (Debian's Python,
kedge's wheel; no registry), imported into the node's containerd, the Modbus mapper running under
`--runtime cri` and its device's readings reaching the cloud."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgecore.edged.cri import kedge_images
from edgecore.edged.cri.images import import_archive
from edgecore.edged.cri.runtime import run_dir
from harness.cloud import CloudProcess, running_cloud
from harness.support import ROOT, SAMPLES, Mosquitto, Proc, free_port, port_open, wait_for

MAPPER = ROOT / "deploy" / "mappers" / "modbus.yaml"
pytestmark = pytest.mark.skipif(
    os.geteuid() != 0
    or not all(shutil.which(b) for b in ("containerd", "runc", "ctr", "gcc"))
    or not shutil.which("apt-get"),
    reason="needs root, containerd, runc and apt (make test installs them)",
)


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """kedge's images, built once per test run."""
    return kedge_images.build(tmp_path_factory.mktemp("images") / "kedge.tar", ROOT)


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[CloudProcess]:
    with running_cloud(tmp_path, "--workload-controllers") as cloud:
        yield cloud


def _temperature(cloud: CloudProcess) -> str | None:
    for twin in cloud.reported("thermostat-1").get("twins", []):
        if twin["propertyName"] == "temperature":
            return str(twin["reported"]["value"])
    return None


def test_the_mapper_daemonset_runs_as_a_container(
    tmp_path: Path, standalone: CloudProcess, broker: Mosquitto, images: Path
) -> None:
    cloud, port = standalone, free_port()
    simulator = Proc([sys.executable, "-m", "simulators.modbus", "--port", str(port)],
                     tmp_path / "simulator.log").start()  # fmt: skip
    edge = cloud.edge(tmp_path / "edge", broker.url)
    edge.extra += ["--runtime", "cri", "--heartbeat", "0.5"]
    try:
        wait_for(lambda: port_open(port), what="Modbus simulator")
        edge.start()
        started = time.monotonic()
        import_archive(run_dir(edge.state_dir) / "containerd.sock", images)
        imported = time.monotonic() - started
        manifest = tmp_path / "modbus.yaml"
        manifest.write_text((SAMPLES / "modbus.yaml").read_text().replace("5020", str(port)))
        cloud.apiserver.kubectl("apply", "-f", str(manifest))
        cloud.apiserver.kubectl("apply", "-f", str(MAPPER))
        what = f"a reading from the containerized mapper (import took {imported:.1f} s)"
        wait_for(lambda: _temperature(cloud), timeout=90, what=what)
        pods = (cloud.get("pods", "-n", "kedge-system") or {}).get("items", [])
        status = pods[0]["status"]["containerStatuses"][0]
        assert status["containerID"].startswith("containerd://") and "running" in status["state"]
        logs = cloud.apiserver.kubectl("logs", "-n", "kedge-system", pods[0]["metadata"]["name"])
        assert '"msg"' in logs.stdout  # the mapper's JSON log lines, through CRI's log files
    finally:
        edge.stop()
        simulator.stop()
    assert not run_dir(edge.state_dir).exists()
