from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.apiserver import ApiServerProcess
from harness.cloud import CloudProcess, running_cloud
from harness.support import SAMPLES, EdgeProcess, Mosquitto, MqttProbe, running

DMI_DEVICES = Path(__file__).parent / "dmi_devices.yaml"  # one device per DMI protocol


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    server = Mosquitto(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def edge(tmp_path: Path, broker: Mosquitto) -> Iterator[EdgeProcess]:
    """edgecore against the test's own mosquitto, with the sample devices loaded."""
    process = EdgeProcess(
        tmp_path / "state", mqtt_url=broker.url, devices=sorted(SAMPLES.glob("*.yaml"))
    )
    process.start()
    yield process
    process.stop()


@pytest.fixture
def probe(broker: Mosquitto) -> Iterator[MqttProbe]:
    client = MqttProbe(broker.port)
    client.subscribe("$hw/events/#")
    yield client
    client.close()


@pytest.fixture(scope="module")
def apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServerProcess]:
    """`kedge apiserver` for one test module; a short watch history so 410 Gone is reachable."""
    process = ApiServerProcess(
        tmp_path_factory.mktemp("apiserver"), extra=("--watch-history", "20")
    ).start()
    yield process
    process.stop()


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[CloudProcess]:
    """A test's own API server and cloudcore (CloudHub, join service, device controller)."""
    with running_cloud(tmp_path) as made:
        yield made


@pytest.fixture
def sockets() -> Iterator[Path]:
    """A short directory for Unix sockets (their paths may not exceed 107 bytes)."""
    made = Path(tempfile.mkdtemp(prefix="kdmi-", dir="/tmp"))
    yield made
    shutil.rmtree(made, ignore_errors=True)


@pytest.fixture(params=["inline", "worker"])
def dmi_edge(request: pytest.FixtureRequest, tmp_path: Path, sockets: Path
             ) -> Iterator[EdgeProcess]:  # fmt: skip
    """edgecore serving DMI on `sockets`/dmi.sock, with dmi_devices.yaml loaded: its gRPC in
    edgecore's own loop, and from a worker process (--dmi-worker)."""
    worker = ["--dmi-worker"] if request.param == "worker" else []
    edge = EdgeProcess(tmp_path / "state", node="edge-node-1", devices=[DMI_DEVICES],
                       extra=["--dmi-socket", str(sockets / "dmi.sock"), *worker])  # fmt: skip
    with running(edge):
        yield edge
