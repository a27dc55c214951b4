"""The edge HTTP API's guards: bodies refused while they stream in (a 300 MiB PUT costs no
memory), a bearer token when it listens beyond loopback (or when asked), non-ASCII digits
refused, junk optional twins capped, and refusal logs throttled."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from harness.support import SAMPLES, EdgeProcess, Mosquitto, MqttProbe, running

DEV = "default/thermostat-1"
T = f"$hw/events/device/{DEV}"


@pytest.fixture
def edge(tmp_path: Path, broker: Mosquitto) -> Iterator[EdgeProcess]:
    process = EdgeProcess(tmp_path / "state", mqtt_url=broker.url,
                          devices=sorted(SAMPLES.glob("*.yaml")),
                          extra=["--max-optional-twins", "5"])  # fmt: skip
    with running(process):
        yield process


def _chunks(total: int, size: int = 1 << 20) -> Iterator[bytes]:
    block = b"x" * size
    for _ in range(total // size):
        yield block


def test_a_300_mib_put_is_refused_without_buffering_it(edge: EdgeProcess) -> None:
    assert edge.process is not None
    before = psutil.Process(edge.process.pid).memory_info().rss
    url = f"{edge.base}/v1/devices/{DEV}/twin/setpoint/desired"
    try:  # chunked: no Content-Length to refuse it by; the server stops reading at 64 KiB
        response = httpx.put(url, content=_chunks(300 << 20), timeout=30)
        assert response.status_code == 413, response.text
    except httpx.TransportError:
        pass  # the server closed the connection while the client was still sending
    grown = psutil.Process(edge.process.pid).memory_info().rss - before
    assert grown < 10 << 20, f"RSS grew by {grown >> 20} MiB"
    assert edge.put(f"/v1/devices/{DEV}/twin/setpoint/desired",
                    json={"value": "22"}).status_code == 200  # fmt: skip


@pytest.mark.parametrize("value", ["٢٥", "１２", "12\n", "1\u00b2"])
def test_non_ascii_digits_are_refused(edge: EdgeProcess, value: str) -> None:
    response = edge.put(f"/v1/devices/{DEV}/twin/setpoint/desired", json={"value": value})
    assert response.status_code == 400 and "64-bit integer" in response.json()["reason"]
    assert edge.twin(DEV, "setpoint")["desired"]["value"] == "21"


def test_junk_optional_twins_are_capped(edge: EdgeProcess, probe: MqttProbe) -> None:
    for n in range(5):
        ok = probe.request(f"{T}/twin/update", {"twin": {f"junk{n}": {"actual": {"value": "x"}}}})
        assert f"junk{n}" in ok["twin"]
    refused = probe.request(f"{T}/twin/update", {"twin": {"junk5": {"actual": {"value": "x"}}}})
    assert refused["code"] == 400 and "5 optional twins" in refused["reason"]


def test_refusals_are_logged_at_most_every_ten_seconds_per_topic(
    edge: EdgeProcess, probe: MqttProbe
) -> None:
    for _ in range(200):
        probe.publish(f"{T}/twin/update", b"{not json")
    probe.request(f"{T}/twin/update", {"twin": {"power": {"actual": {"value": "true"}}}})
    lines = [line for line in edge.log().splitlines() if "request refused" in line]
    assert 1 <= len(lines) <= 2, lines


def test_the_token_is_asked_beyond_loopback_or_when_configured(
    tmp_path: Path, broker: Mosquitto
) -> None:
    process = EdgeProcess(tmp_path / "state", mqtt_url=broker.url,
                          devices=sorted(SAMPLES.glob("*.yaml")),
                          extra=["--http-auth", "token"])  # fmt: skip
    process.start(wait=False)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # /healthz stays open: probes need no token
            try:
                if httpx.get(f"{process.base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)  # waiting for the server to listen
        token_file = tmp_path / "state" / "http-token"
        assert oct(token_file.stat().st_mode & 0o777) == "0o600"
        token = token_file.read_text().strip()
        assert process.get(f"/v1/devices/{DEV}").status_code == 401
        forged = httpx.get(f"{process.base}/v1/devices/{DEV}",
                           headers={"Authorization": "Bearer nope"}, timeout=5)  # fmt: skip
        assert forged.status_code == 401
        ok = httpx.get(f"{process.base}/v1/devices/{DEV}",
                       headers={"Authorization": f"Bearer {token}"}, timeout=5)  # fmt: skip
        assert ok.status_code == 200
    finally:
        process.stop()
