from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import SAMPLES, EdgeProcess, Mosquitto, MqttProbe


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
