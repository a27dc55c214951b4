"""Twins survive a clean restart and a `kill -9` in the middle of a stream of updates."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from harness.support import SAMPLES, EdgeProcess, Mosquitto, MqttProbe, wait_for

DEVICES = [
    "default/thermostat-1",
    "default/thermostat-opcua-1",
    "default/zigbee-light-1",
    "default/ble-thermostat-1",
]


def _all_twins(edge: EdgeProcess) -> dict[str, object]:
    return {d["id"]: d["twins"] for d in edge.get("/v1/devices").json()["items"]}


def test_restart_keeps_every_twin(tmp_path: Path, broker: Mosquitto, probe: MqttProbe) -> None:
    edge = EdgeProcess(
        tmp_path / "state", mqtt_url=broker.url, devices=sorted(SAMPLES.glob("*.yaml"))
    ).start()
    try:
        for i, device in enumerate(DEVICES):
            topic = f"$hw/events/device/{device}/twin/update"
            probe.request(topic, {"twin": {"note": {"actual": {"value": f"n{i}"}}}})
        probe.request("$hw/events/device/default/thermostat-1/state/update", {"state": "ok"})
        assert (
            edge.put(
                "/v1/devices/default/thermostat-1/twin/setpoint/desired", json={"value": "26"}
            ).status_code
            == 200
        )
        before = _all_twins(edge)
        state = edge.get("/v1/devices/default/thermostat-1").json()["state"]
    finally:
        assert edge.stop() == 0
    # restart with the same manifests: the edge-local desired value 26 is not reset to 21
    edge.start()
    try:
        assert _all_twins(edge) == before
        assert edge.twin("default/thermostat-1", "setpoint")["desired"]["value"] == "26"
        assert edge.get("/v1/devices/default/thermostat-1").json()["state"] == state
    finally:
        edge.stop()
    # and without any manifests (autonomy): still every twin
    edge.devices = []
    edge.start()
    try:
        assert _all_twins(edge) == before
    finally:
        edge.stop()


def test_kill_9_during_update_stream_leaves_consistent_store(
    tmp_path: Path, broker: Mosquitto, probe: MqttProbe
) -> None:
    edge = EdgeProcess(
        tmp_path / "state", mqtt_url=broker.url, devices=sorted(SAMPLES.glob("*.yaml"))
    ).start()
    acked: dict[str, int] = dict.fromkeys(DEVICES, 0)
    stop = threading.Event()
    sent = {"n": 0}

    def stream() -> None:
        n = 0
        while not stop.is_set() and n < 200_000:
            n += 1
            for device in DEVICES:
                probe.client.publish(
                    f"$hw/events/device/{device}/twin/update",
                    f'{{"event_id":"{device}|{n}","twin":{{"a":{{"actual":'
                    f'{{"value":"{n}"}}}},"b":{{"actual":{{"value":"{n}"}}}}}}}}',
                )
            sent["n"] = n

    def count_acks() -> bool:
        while not probe.messages.empty():
            topic, payload = probe.messages.get()
            if topic.endswith("/twin/update/result") and b'"code"' not in payload[:200]:
                event = payload.split(b'"event_id":"', 1)[1].split(b'"', 1)[0].decode()
                device, n = event.split("|")
                acked[device] = max(acked[device], int(n))
        return min(acked.values()) >= 300

    publisher = threading.Thread(target=stream)
    publisher.start()
    try:
        wait_for(count_acks, timeout=30, what="300 acknowledged updates per device")
        edge.kill()
    finally:
        stop.set()
        publisher.join(10)
    count_acks()

    db = sqlite3.connect(tmp_path / "state" / "edgecore.db")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()
    edge.start()
    try:
        for device in DEVICES:
            twins = {
                t["propertyName"]: t for t in edge.get(f"/v1/devices/{device}").json()["twins"]
            }
            a, b = int(twins["a"]["reported"]["value"]), int(twins["b"]["reported"]["value"])
            assert a == b, f"{device}: one message applied half-way ({a} vs {b})"
            assert acked[device] <= a <= sent["n"], f"{device}: acked {acked[device]}, stored {a}"
            # QoS 0: the broker may drop some of a flood, so writes <= n, never more
            assert 0 < twins["a"]["reported"]["version"]["edge"] <= a
    finally:
        edge.stop()
