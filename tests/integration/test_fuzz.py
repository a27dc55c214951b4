"""Fuzzers in a bounded, seeded form (about a minute): schemathesis against the edge HTTP API's
own OpenAPI document, and generated hostile payloads on every MQTT request topic. Nothing may
answer 5xx or crash the process, and no stored twin may change through a refused request."""

from __future__ import annotations

import contextlib
import itertools
import json
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from harness.support import SAMPLES, EdgeProcess, Mosquitto, MqttProbe, running

OTHER = "default/thermostat-opcua-1"  # never a target of the MQTT fuzzer
TARGET = "$hw/events/device/default/thermostat-1"


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EdgeProcess, Mosquitto]]:
    workdir = tmp_path_factory.mktemp("fuzz")
    broker = Mosquitto(workdir).start()
    edge = EdgeProcess(workdir / "state", mqtt_url=broker.url,
                       devices=sorted(SAMPLES.glob("*.yaml")))  # fmt: skip
    try:
        with running(edge):
            yield edge, broker
    finally:
        broker.stop()


def test_the_edge_api_never_answers_5xx(fuzzed: tuple[EdgeProcess, Mosquitto]) -> None:
    """Every operation of the edge API's OpenAPI document, with schemathesis' generated (and
    deliberately wrong) requests: no 5xx, JSON errors only."""
    edge, _ = fuzzed
    api = schemathesis.openapi.from_url(f"{edge.base}/openapi.json")
    calls = 0
    operations = [found.ok() for found in api.get_all_operations()]
    for operation, mode in itertools.product(operations, schemathesis.GenerationMode):

        @given(case=operation.as_strategy(mode))
        @settings(max_examples=200, derandomize=True, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        def call(case: Any) -> None:
            nonlocal calls
            response = case.call(timeout=10)
            calls += 1
            assert response.status_code < 500, (case.method, case.path, response.text[:300])
            if response.status_code >= 400:  # schemathesis' headers are lists of values
                kind = response.headers.get("content-type") or [""]
                assert str(kind[0]).startswith("application/json"), response.headers

        with contextlib.suppress(Unsatisfiable):  # no wrong request exists (no parameters)
            call()
    assert calls >= 1000


_names = st.text(string.ascii_letters + string.digits + "-_.:/@#", min_size=1, max_size=12)
_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                     st.text(max_size=20))  # fmt: skip
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8)  # fmt: skip
_twin = st.fixed_dictionaries({}, optional={
    "actual": st.one_of(_values, st.fixed_dictionaries({"value": _values})),
    "expected": st.one_of(_values, st.fixed_dictionaries({"value": _values})),
    "metadata": st.one_of(_values, st.fixed_dictionaries({"type": _values})),
    "optional": _values, "attempt": _values, "error": _values,
    "expected_version": _values, "actual_version": _values,
})  # fmt: skip
_bodies = st.one_of(
    st.fixed_dictionaries({"twin": st.dictionaries(_names, st.one_of(_twin, _values),
                                                   max_size=4)}),
    st.fixed_dictionaries({"state": _values, "event_id": _values}),
    st.fixed_dictionaries({"protocol": _values}),
    _values,
).map(lambda body: json.dumps(body, default=str).encode())  # fmt: skip
_raw = st.one_of(_bodies, st.binary(max_size=64))
_topics = st.sampled_from([
    f"{TARGET}/twin/update", f"{TARGET}/twin/get", f"{TARGET}/state/update",
    "$hw/events/node/edge-node-1/membership/get", "$hw/events/node/edge-node-1/mappers/x/y",
    "$hw/events/device/default/ghost/twin/update", "$hw/events/device/default/twin/update",
    f"{TARGET}/twin/nope",
])  # fmt: skip


def test_hostile_mqtt_payloads_are_answered_and_change_nothing_else(
    fuzzed: tuple[EdgeProcess, Mosquitto],
) -> None:
    edge, broker = fuzzed
    before = edge.get(f"/v1/devices/{OTHER}").content
    probe = MqttProbe(broker.port)
    probe.subscribe("$hw/events/#")
    sent = 0

    @given(topic=_topics, payload=_raw)
    @settings(max_examples=6000, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    def publish(topic: str, payload: bytes) -> None:
        nonlocal sent
        probe.client.publish(topic, payload)
        sent += 1

    try:
        publish()
        ok = probe.request(f"{TARGET}/twin/get", {})  # still answering, after all of it
        assert "setpoint" in ok["twin"]
        answers = [json.loads(p) for t, p in probe.seen if t.endswith("/result")]
    finally:
        probe.close()
    assert sent >= 5000
    assert not [a for a in answers if isinstance(a, dict) and a.get("code") == 500]
    assert edge.healthy()
    assert edge.get(f"/v1/devices/{OTHER}").content == before
    assert Path(edge.state_dir / "edgecore.log").stat().st_size < 2 << 20  # throttled logs
