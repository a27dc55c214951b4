"""The edge broker's identities and ACLs, against edgecore's own mosquitto: an app or another
protocol's mapper cannot forge deltas, membership or reports, nor read other protocols' device
specs; the mapper refuses a delta outside the model even when one reaches it; oversized
publishes never cost edgecore its connection."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.support import (
    SAMPLES,
    EdgeProcess,
    Mosquitto,
    MqttProbe,
    Proc,
    free_port,
    modbus_register,
    port_open,
    running,
    wait_for,
)

DEV = "$hw/events/device/default/thermostat-1"
NODE = "$hw/events/node/edge-node-1"


def _probe(edge: EdgeProcess, role: str) -> MqttProbe:
    url = (edge.state_dir / "broker" / f"{role}.url").read_text().strip()
    auth, _, hostport = url.removeprefix("mqtt://").rpartition("@")
    user, _, password = auth.partition(":")
    return MqttProbe(int(hostport.rsplit(":", 1)[1]), user, password)


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[EdgeProcess]:
    """edgecore with its own mosquitto (identities and ACLs), the sample devices loaded."""
    process = EdgeProcess(tmp_path / "state", broker_port=free_port(),
                          devices=sorted(SAMPLES.glob("*.yaml")))  # fmt: skip
    with running(process):
        yield process


def test_identities_are_files_only_their_owner_reads(edge: EdgeProcess) -> None:
    broker = edge.state_dir / "broker"
    assert oct(broker.stat().st_mode & 0o777) == "0o700"
    for name in ("passwd", "acl", "identities.json", "mqtt-url", "app.url", "mapper-modbus.url"):
        assert oct((broker / name).stat().st_mode & 0o777) == "0o600", name
    assert "$7$101$" in (broker / "passwd").read_text()  # hashes only


def test_apps_and_other_mappers_cannot_forge_or_read_what_is_not_theirs(edge: EdgeProcess) -> None:
    mapper = _probe(edge, "mapper-modbus")
    app, opcua = _probe(edge, "app"), _probe(edge, "mapper-opcua")
    try:
        mapper.subscribe(f"{DEV}/twin/update/delta")
        mapper.subscribe(f"{NODE}/membership/#")
        app.subscribe("$hw/events/#")
        forged = {"event_id": "f", "delta": {"power": "false"}}
        app.publish(f"{DEV}/twin/update/delta", forged)
        opcua.publish(f"{DEV}/twin/update/delta", forged)
        app.publish(f"{NODE}/membership/updated/modbus",
                    {"added_devices": [{"id": "default/thermostat-1", "spec": {}}]})  # fmt: skip
        # another protocol's mapper and an app cannot report for the Modbus device
        for intruder in (app, opcua):
            intruder.publish(f"{DEV}/twin/update", {"twin": {"temperature": {"actual": {
                "value": "99"}}}})  # fmt: skip
        # an app may ask for twins, and read the answer
        assert app.request(f"{DEV}/twin/get", {})["twin"]["setpoint"]
        # the edge's own delta reaches the mapper; nothing forged did
        assert edge.put("/v1/devices/default/thermostat-1/twin/setpoint/desired",
                        json={"value": "24"}).status_code == 200  # fmt: skip
        delta = mapper.expect(f"{DEV}/twin/update/delta")
        assert delta["delta"] == {"setpoint": "24"}
        assert not [t for t, _ in mapper.seen if t.endswith("/delta") or "/updated" in t]
        assert edge.twin("default/thermostat-1", "temperature")["reported"] is None
        # the Modbus mapper's identity reads its own devices' specs, not OPC UA's (credentials)
        answer = mapper.request(f"{NODE}/membership/get", {"protocol": "modbus"},
                                f"{NODE}/membership/get/result/modbus")  # fmt: skip
        assert [d["id"] for d in answer["devices"]] == ["default/thermostat-1"]
        mapper.subscribe(f"{NODE}/membership/get/result/opcua")
        with pytest.raises(TimeoutError):
            mapper.request(f"{NODE}/membership/get", {"protocol": "opcua"},
                           f"{NODE}/membership/get/result/opcua", timeout=2)  # fmt: skip
    finally:
        for probe in (mapper, app, opcua):
            probe.close()


def test_the_mapper_refuses_a_delta_outside_the_model_even_when_it_reaches_it(
    tmp_path: Path,
) -> None:
    port = free_port()
    simulator = Proc([sys.executable, "-m", "simulators.modbus", "--port", str(port)],
                     tmp_path / "simulator.log").start()  # fmt: skip
    wait_for(lambda: port_open(port), what="simulator")
    manifest = tmp_path / "modbus.yaml"
    manifest.write_text(
        (SAMPLES / "modbus.yaml").read_text().replace("port: 5020", f"port: {port}")
    )
    edge = EdgeProcess(tmp_path / "state", broker_port=free_port(), devices=[manifest])
    with running(edge):
        url = (edge.state_dir / "broker" / "mapper-modbus.url").read_text().strip()
        mapper = Proc([sys.executable, "-m", "mappers.modbus", "--node", "edge-node-1",
                       "--mqtt", url], tmp_path / "mapper.log").start()  # fmt: skip
        owner = _probe(edge, "edgecore")  # the one identity that may publish deltas
        try:
            wait_for(lambda: edge.twin("default/thermostat-1", "setpoint")["inSync"], timeout=30,
                     what="the mapper serving")  # fmt: skip
            for bad in ({"setpoint": "99"}, {"setpoint": "warm"}, {"temperature": "5"},
                        {"power": "maybe"}):  # fmt: skip
                owner.publish(f"{DEV}/twin/update/delta", {"event_id": "x", "delta": bad})
            log = tmp_path / "mapper.log"
            wait_for(lambda: log.read_text().count("refused") >= 4, what="four refusals")
            assert "99 is above the maximum 35" in log.read_text()
            assert modbus_register(port) == 21  # the device never saw any of them
        finally:
            owner.close()
            mapper.stop()
    simulator.stop()


def test_oversized_publishes_never_cost_edgecore_its_connection(
    tmp_path: Path, edge: EdgeProcess
) -> None:
    mapper = _probe(edge, "mapper-modbus")
    try:
        mapper.subscribe(f"{DEV}/twin/update/result")  # the mapper may not read results:
        mapper.publish(f"{DEV}/twin/update", os.urandom(16 * 1024 * 1024 + 10))  # dropped
        assert edge.healthy()
        owner = _probe(edge, "edgecore")
        owner.subscribe(f"{DEV}/twin/update/result")
        try:
            big = owner.request(f"{DEV}/twin/update", b"{" + b" " * 200_000 + b"}",
                                f"{DEV}/twin/update/result")  # fmt: skip
            assert big["code"] == 400 and "payload is 200002 bytes" in big["reason"]
            normal = owner.request(f"{DEV}/twin/update",
                                   {"twin": {"power": {"actual": {"value": "true"}}}})  # fmt: skip
            assert "power" in normal["twin"]
        finally:
            owner.close()
    finally:
        mapper.close()


def test_a_16_mib_publish_through_a_broker_without_limits_is_answered(
    tmp_path: Path, broker: Mosquitto, probe: MqttProbe
) -> None:
    process = EdgeProcess(tmp_path / "state", mqtt_url=broker.url,
                          devices=sorted(SAMPLES.glob("*.yaml")))  # fmt: skip
    with running(process):
        answer = probe.request(f"{DEV}/twin/update", b"x" * (16 * 1024 * 1024 + 1), timeout=30)
        assert answer["code"] == 400 and "payload is 16777217 bytes" in answer["reason"]
        assert process.healthy()
        ok = probe.request(f"{DEV}/twin/update", {"twin": {"power": {"actual": {"value": "true"}}}})
        assert ok["twin"]["power"]["actual"]["value"] == "true"
        assert "MQTT connection lost" not in process.log()


def test_anonymous_loopback_clients_only_when_asked_and_only_device_topics(tmp_path: Path) -> None:
    """KubeEdge's apps and mappers connect anonymously: `--broker-anonymous` lets them do what
    they do there (report, ask twins and membership), not speak for mappers or edgecore."""
    samples = sorted(SAMPLES.glob("*.yaml"))
    process = EdgeProcess(tmp_path / "state", broker_port=free_port(), devices=samples,
                          extra=["--broker-anonymous"])  # fmt: skip
    with running(process):
        port = process.broker_credentials()[0]
        anonymous = MqttProbe(port)
        watcher = _probe(process, "app")
        try:
            watcher.subscribe(f"{NODE}/mappers/#")
            anonymous.subscribe(f"{NODE}/membership/get/result")
            anonymous.subscribe(f"{DEV}/twin/update/result")
            answer = anonymous.request(f"{DEV}/twin/update", {"twin": {"temperature": {
                "actual": {"value": "20.5"}}}})  # fmt: skip
            assert answer["twin"]["temperature"]["actual"]["value"] == "20.5"
            assert (
                process.twin("default/thermostat-1", "temperature")["reported"]["value"] == "20.5"
            )
            members = anonymous.request(
                f"{NODE}/membership/get", {}, f"{NODE}/membership/get/result"
            )
            assert "default/thermostat-1" in [d["id"] for d in members["devices"]]
            # not a mapper's presence, not another node's topics
            anonymous.publish(f"{NODE}/mappers/modbus/fake", {"since": 1})
            with pytest.raises(TimeoutError):
                watcher.expect(f"{NODE}/mappers/modbus/fake", timeout=1)
        finally:
            anonymous.close()
            watcher.close()
