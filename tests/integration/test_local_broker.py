"""`--broker local`: edgecore supervises its own mosquitto, loopback-only with a password."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import paho.mqtt.client as mqtt
import psutil
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from harness.support import SAMPLES, EdgeProcess, MqttProbe, free_port, running, wait_for

T = "$hw/events/device/default/thermostat-1"


def _mosquitto_pid(edge: EdgeProcess) -> int | None:
    assert edge.process is not None
    for child in psutil.Process(edge.process.pid).children():
        with contextlib.suppress(psutil.NoSuchProcess):  # the killed one may just be reaped
            if "mosquitto" in child.name():
                return int(child.pid)
    return None


def test_local_broker_serves_twins_and_is_restarted_when_it_dies(tmp_path: Path) -> None:
    edge = EdgeProcess(
        tmp_path / "state", broker_port=free_port(), devices=sorted(SAMPLES.glob("*.yaml"))
    )
    with running(edge):
        port, user, password = edge.broker_credentials()
        conf = (tmp_path / "state" / "broker" / "mosquitto.conf").read_text()
        assert f"listener {port} 127.0.0.1" in conf and "allow_anonymous false" in conf
        assert oct(os.stat(tmp_path / "state" / "broker" / "mqtt-url").st_mode)[-3:] == "600"

        anonymous = mqtt.Client(CallbackAPIVersion.VERSION2)
        with pytest.raises(Exception):  # noqa: B017 - refused either at CONNACK or by socket
            anonymous.connect("127.0.0.1", port)
            anonymous.loop_start()
            wait_for(anonymous.is_connected, timeout=2)
        anonymous.loop_stop()

        probe = MqttProbe(port, user, password)
        try:
            probe.subscribe("$hw/events/#")
            reply = probe.request(
                f"{T}/twin/update", {"twin": {"temperature": {"actual": {"value": "21.5"}}}}
            )
            assert "code" not in reply
            assert edge.twin("default/thermostat-1", "temperature")["reported"]["value"] == "21.5"

            first = _mosquitto_pid(edge)
            assert first is not None
            os.kill(first, signal.SIGKILL)
            wait_for(
                lambda: _mosquitto_pid(edge) not in (None, first),
                timeout=15,
                what="mosquitto to be restarted",
            )
            wait_for(
                lambda: edge.get("/healthz").status_code == 200,
                timeout=15,
                what="edgecore to reconnect",
            )
        finally:
            probe.close()

        probe = MqttProbe(port, user, password)
        try:
            probe.subscribe("$hw/events/#")
            reply = probe.request(
                f"{T}/twin/update", {"twin": {"temperature": {"actual": {"value": "22.5"}}}}
            )
            assert reply["twin"]["temperature"]["actual"]["value"] == "22.5"
            assert "kedge_broker_restarts" in edge.get("/metrics").text
        finally:
            probe.close()
