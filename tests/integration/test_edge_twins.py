"""edgecore against a real mosquitto: the MQTT twin contract and the HTTP API, end to end."""

from __future__ import annotations

from harness.support import EdgeProcess, MqttProbe, wait_for

DEV = "default/thermostat-1"
T = f"$hw/events/device/{DEV}"


def test_reported_update_from_plain_paho_client_shows_over_http(
    edge: EdgeProcess, probe: MqttProbe
) -> None:
    result = probe.request(
        f"{T}/twin/update", {"twin": {"temperature": {"actual": {"value": "23.5"}}}}
    )
    assert result["twin"]["temperature"]["actual"]["value"] == "23.5"
    twin = edge.twin(DEV, "temperature")
    assert twin["reported"]["value"] == "23.5"
    assert twin["reported"]["version"] == {"cloud": 0, "edge": 1}
    document = probe.expect(f"{T}/twin/update/document")
    assert document["twin"]["temperature"]["current"]["actual"]["value"] == "23.5"


def test_edge_local_desired_write_over_http_produces_delta_on_mqtt(
    edge: EdgeProcess, probe: MqttProbe
) -> None:
    response = edge.put(f"/v1/devices/{DEV}/twin/setpoint/desired", json={"value": "24"})
    assert response.status_code == 200, response.text
    assert response.json()["desired"]["value"] == "24"
    delta = probe.expect(f"{T}/twin/update/delta", lambda b: b["delta"].get("setpoint") == "24")
    assert delta["twin"]["setpoint"]["expected"]["value"] == "24"
    # the mapper reports the new value: in sync, and observedDesired records the set-point
    probe.request(f"{T}/twin/update", {"twin": {"setpoint": {"actual": {"value": "24"}}}})
    twin = edge.twin(DEV, "setpoint")
    assert twin["inSync"] and twin["observedDesired"]["value"] == "24"


def test_desired_from_manifest_is_announced_as_delta(edge: EdgeProcess, probe: MqttProbe) -> None:
    result = probe.request(f"{T}/twin/get", {})
    assert result["twin"]["setpoint"]["expected"]["value"] == "21"


def test_twin_get_answers_without_versions(edge: EdgeProcess, probe: MqttProbe) -> None:
    probe.request(f"{T}/twin/update", {"twin": {"power": {"actual": {"value": "true"}}}})
    result = probe.request(f"{T}/twin/get", {})
    power = result["twin"]["power"]
    assert power["actual"]["value"] == "true" and power["metadata"]["type"] == "boolean"
    assert "actual_version" not in power


def test_membership_get_answers_with_merged_spec_on_the_protocols_own_topic(
    edge: EdgeProcess, probe: MqttProbe
) -> None:
    topic = "$hw/events/node/edge-node-1/membership/get"
    everything = probe.request(topic, {})
    assert sorted(d["id"] for d in everything["devices"]) == [
        "default/ble-thermostat-1",
        "default/thermostat-1",
        "default/thermostat-opcua-1",
        "default/zigbee-coordinator",
        "default/zigbee-light-1",
        "default/zigbee-thermostat-1",
    ]
    assert all("spec" not in d for d in everything["devices"])  # KubeEdge's fields only
    modbus = probe.request(topic, {"protocol": "modbus"}, f"{topic}/result/modbus")
    [device] = modbus["devices"]
    assert device["spec"]["protocol"]["configData"]["port"] == 5020
    temperature = next(p for p in device["spec"]["properties"] if p["name"] == "temperature")
    assert temperature["visitors"]["configData"]["register"] == "InputRegister"
    assert temperature["type"] == "float" and temperature["collectCycle"] == 1000


def test_membership_get_for_other_node_is_not_answered(edge: EdgeProcess, probe: MqttProbe) -> None:
    probe.publish("$hw/events/node/other-node/membership/get", {"event_id": "x"})
    result = probe.request("$hw/events/node/edge-node-1/membership/get", {})
    assert result["devices"]
    assert not any(
        t.startswith("$hw/events/node/other-node/membership/get/") for t, _ in probe.seen
    )


def test_state_update_answers_and_shows_over_http(edge: EdgeProcess, probe: MqttProbe) -> None:
    result = probe.request(f"{T}/state/update", {"state": "online"})
    assert result["device"]["state"] == "online" and result["device"]["lastOnlineTime"]
    result = probe.request(f"{T}/state/update", {"state": "disconnected"})
    assert result["device"]["state"] == "disconnected"
    body = edge.get(f"/v1/devices/{DEV}").json()
    assert body["state"] == "disconnected" and body["lastOnlineTime"]


def test_optional_twin_created_then_deleted_leaves_no_visible_twin(
    edge: EdgeProcess, probe: MqttProbe
) -> None:
    probe.request(f"{T}/twin/update", {"twin": {"firmware": {"actual": {"value": "1.2.3"}}}})
    assert edge.twin(DEV, "firmware")["optional"] is True
    probe.request(f"{T}/twin/update", {"twin": {"firmware": None}})
    assert edge.get(f"/v1/devices/{DEV}/twin/firmware").status_code == 404
    assert "firmware" not in probe.request(f"{T}/twin/get", {})["twin"]


def test_metrics_count_requests(edge: EdgeProcess, probe: MqttProbe) -> None:
    probe.request(f"{T}/twin/update", {"twin": {"temperature": {"actual": {"value": "1"}}}})
    text = wait_for(
        lambda: (
            (t := edge.get("/metrics").text)
            and 'kedge_mqtt_requests_total{action="twin/update",code="200"}' in t
            and t
        ),
        what="metrics",
    )
    assert "kedge_devices 6.0" in text and "kedge_mqtt_connected 1.0" in text
