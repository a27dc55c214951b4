"""Bad input over MQTT and HTTP: a clear error each time, stored twins untouched, process up."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from harness.support import SAMPLES, EdgeProcess, Mosquitto, MqttProbe

DEV = "default/thermostat-1"
T = f"$hw/events/device/{DEV}"
GOOD = {"twin": {"setpoint": {"actual": {"value": "20"}}}}


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EdgeProcess, MqttProbe]]:
    """One broker, edgecore and probe for the module: each case checks nothing changed."""
    workdir = tmp_path_factory.mktemp("bad-input")
    broker = Mosquitto(workdir).start()
    edge = EdgeProcess(
        workdir / "state", mqtt_url=broker.url, devices=sorted(SAMPLES.glob("*.yaml"))
    ).start()
    probe = MqttProbe(broker.port)
    probe.subscribe("$hw/events/#")
    yield edge, probe
    probe.close()
    edge.stop()
    broker.stop()


@pytest.fixture
def edge(shared: tuple[EdgeProcess, MqttProbe]) -> EdgeProcess:
    return shared[0]


@pytest.fixture
def probe(shared: tuple[EdgeProcess, MqttProbe]) -> MqttProbe:
    return shared[1]


def _twins(edge: EdgeProcess) -> list[dict[str, Any]]:
    return [d["twins"] for d in edge.get("/v1/devices").json()["items"]]


@pytest.mark.parametrize(
    ("topic", "payload", "code", "fragment"),
    [
        (f"{T}/twin/update", b"{not json", 400, "not valid JSON"),
        (f"{T}/twin/update", b"[1, 2, 3]", 400, "must be a JSON object"),
        (
            f"{T}/twin/update",
            {"twin": {"setpoint": {"actual": {"value": "abc"}}}},
            400,
            "not a 64-bit integer",
        ),
        (
            f"{T}/twin/update",
            {"twin": {"setpoint": {"actual": {"value": 20}}}},
            400,
            "must be a string",
        ),
        (
            f"{T}/twin/update",
            {"twin": {"bad key!": {"actual": {"value": "1"}}}},
            400,
            "invalid property name",
        ),
        (
            f"{T}/twin/update",
            {
                "twin": {
                    "setpoint": {"actual": {"value": "20"}},
                    "power": {"actual": {"value": "maybe"}},
                }
            },
            400,
            "not a boolean",
        ),
        (
            f"{T}/twin/update",
            {"twin": {"temperature": {"expected": {"value": "30"}}}},
            400,
            "ReadOnly",
        ),
        (f"{T}/twin/update", b"{" + b" " * (64 * 1024) + b"}", 400, "the limit is 65536"),
        (
            f"{T}/twin/update",
            {
                "twin": {
                    "setpoint": {
                        "actual": {"value": "1"},
                        "actual_version": {"cloud": 0, "edge": 99},
                    }
                }
            },
            409,
            "version",
        ),
        ("$hw/events/device/default/nope/twin/update", GOOD, 404, "not bound to node"),
        ("$hw/events/device/default/nope/twin/get", {}, 404, "not bound to node"),
        (f"{T}/state/update", {"state": "sleepy"}, 400, "unknown device state"),
        (f"{T}/state/update", {"state": 5}, 400, "string 'state'"),
        ("$hw/events/node/edge-node-1/membership/get", b"\x00\x01", 400, "not valid JSON"),
        ("$hw/events/device/thermostat-1/twin/update", GOOD, 400, "names no namespace"),
        (f"{T}/twin/explode", GOOD, 400, "unknown action"),
        ("$hw/events/device/BAD_NS/x/twin/update", GOOD, 400, "invalid namespace"),
    ],
)
def test_bad_mqtt_input_gets_error_result_and_leaves_twins(
    edge: EdgeProcess, probe: MqttProbe, topic: str, payload: Any, code: int, fragment: str
) -> None:
    before = _twins(edge)
    reply_topic = topic.replace("/membership/get", "/membership/get/result")
    if not reply_topic.endswith("/result"):
        reply_topic += "/result"
    body = json.dumps(payload).encode() if isinstance(payload, dict) else payload
    probe.publish(topic, body)
    error = probe.expect(reply_topic, lambda b: "code" in b)
    assert error["code"] == code and fragment in error["reason"], error
    assert _twins(edge) == before
    # the process is still up and still serves good requests
    assert probe.request(f"{T}/twin/update", GOOD)["twin"]["setpoint"]["actual"]["value"] == "20"


@pytest.mark.parametrize(
    ("path", "kwargs", "code", "fragment"),
    [
        (
            "/v1/devices/default/thermostat-1/twin/setpoint/desired",
            {"content": b"{oops", "headers": {"content-type": "application/json"}},
            422,
            "JSON",
        ),
        (
            "/v1/devices/default/thermostat-1/twin/setpoint/desired",
            {"json": {"value": 5}},
            422,
            "value",
        ),
        ("/v1/devices/default/thermostat-1/twin/setpoint/desired", {"json": {}}, 422, "value"),
        (
            "/v1/devices/default/thermostat-1/twin/setpoint/desired",
            {"json": {"value": "5", "colour": "red"}},
            422,
            "colour",
        ),
        (
            "/v1/devices/default/thermostat-1/twin/setpoint/desired",
            {"json": {"value": "abc"}},
            400,
            "not a 64-bit integer",
        ),
        (
            "/v1/devices/default/thermostat-1/twin/setpoint/desired",
            {"json": {"value": "99"}},
            400,
            "above the maximum",
        ),
        (
            "/v1/devices/default/thermostat-1/twin/temperature/desired",
            {"json": {"value": "20"}},
            400,
            "ReadOnly",
        ),
        (
            "/v1/devices/default/thermostat-1/twin/setpoint/desired",
            {"json": {"value": "22", "version": {"cloud": 7, "edge": 7}}},
            409,
            "version",
        ),
        (
            "/v1/devices/default/thermostat-1/twin/nope/desired",
            {"json": {"value": "1"}},
            404,
            "no property",
        ),
        (
            "/v1/devices/default/ghost/twin/setpoint/desired",
            {"json": {"value": "1"}},
            404,
            "not bound",
        ),
        (
            "/v1/devices/default/thermostat-1/twin/setpoint/desired",
            {"json": {"value": "x" * 70000}},
            413,
            "limit",
        ),
    ],
)
def test_bad_http_input_gets_json_error_and_leaves_twins(
    edge: EdgeProcess, path: str, kwargs: dict[str, Any], code: int, fragment: str
) -> None:
    before = _twins(edge)
    response = edge.put(path, **kwargs)
    assert response.status_code == code, response.text
    body = response.json()
    assert body["code"] == code and fragment in body["reason"], body
    assert _twins(edge) == before


def test_unknown_device_and_route_over_http_are_json_404(edge: EdgeProcess) -> None:
    for path in (
        "/v1/devices/default/ghost",
        "/v1/devices/default/thermostat-1/twin/ghost",
        "/v1/nothing-here",
    ):
        response = edge.get(path)
        assert response.status_code == 404 and response.json()["code"] == 404


def test_desired_compare_and_set_succeeds_with_current_version(edge: EdgeProcess) -> None:
    current = edge.twin(DEV, "setpoint")["desired"]["version"]
    response = edge.put(
        f"/v1/devices/{DEV}/twin/setpoint/desired", json={"value": "22", "version": current}
    )
    assert response.status_code == 200
    assert response.json()["desired"]["version"] == {**current, "edge": current["edge"] + 1}
