from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.apiserver import ApiServerProcess
from harness.cloud import CloudProcess, running_cloud
from harness.support import SAMPLES, EdgeProcess, Mosquitto, MqttProbe


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
