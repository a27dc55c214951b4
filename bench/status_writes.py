"""API writes per reported value under a flood of reports: the status coalescing at work.

Ten Modbus devices on one edge node get reported temperatures as fast as a paho-mqtt client
publishes them (a flood far beyond any real sensor), for `--seconds`. A watch on Devices counts
the status writes that reach the API server. Measured twice in the same run: with the default
`--status-interval 1` (at most one write per device per second, latest value wins) and, as the
baseline, with `--status-interval 0` (a write per report as fast as they can go, only reports
arriving during a write coalesce; KubeEdge writes one per report). Both must end with the last
value in Device.status.
"""

from __future__ import annotations

import argparse
import contextlib
import threading
import time
import uuid

import orjson
import paho.mqtt.client as mqtt
from kubernetes import client, config, watch
from paho.mqtt.enums import CallbackAPIVersion

from bench.cloud import cloud_system
from harness.support import EdgeProcess, wait_for

DEVICES = [f"modbus-{i:03d}" for i in range(10)]
FINAL = "99.99"


class WriteCounter:
    """Counts MODIFIED events of DeviceStatus objects (one per status write) from a watch
    thread."""

    def __init__(self, api: client.ApiClient) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.writes = 0
        self.last: dict[str, str] = {}
        self._watch = watch.Watch()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        with contextlib.suppress(Exception):  # the watch breaks when the API server stops
            self._watch_events()

    def _watch_events(self) -> None:
        stream = self._watch.stream(
            self.custom.list_cluster_custom_object,
            "devices.kubeedge.io",
            "v1beta1",
            "devicestatuses",
        )
        for event in stream:
            obj = event["object"]
            if event["type"] == "MODIFIED":
                self.writes += 1
            for twin in (obj.get("status") or {}).get("twins") or []:
                if twin.get("propertyName") == "temperature":
                    self.last[obj["metadata"]["name"]] = str(twin["reported"]["value"])

    def stop(self) -> None:
        self._watch.stop()


def flood(port: int, seconds: float) -> int:
    """Publish readings as fast as the client can for `seconds`, then a final reading of 99.99
    per device (after the flood, so none is lost to QoS 0 queue limits); the count sent."""
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"flood-{uuid.uuid4()}")
    publisher.max_queued_messages_set(0)
    publisher.connect("127.0.0.1", port)
    publisher.loop_start()
    wait_for(publisher.is_connected, what="flood client")

    def publish(name: str, value: str) -> None:
        body = {"event_id": "", "twin": {"temperature": {"actual": {"value": value}}}}
        publisher.publish(f"$hw/events/device/default/{name}/twin/update", orjson.dumps(body))

    sent, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        for name in DEVICES:
            publish(name, f"{20 + (sent % 1000) / 100:.2f}")
            sent += 1
        if sent % 1000 == 0:
            time.sleep(0.01)  # pacing: let the broker breathe
    time.sleep(1)  # pacing: the flood drains before the final readings
    for name in DEVICES:
        publish(name, FINAL)
    publisher.loop_stop()
    publisher.disconnect()
    return sent + len(DEVICES)


def accepted(edge: EdgeProcess) -> int:
    """Reported values the edge accepted (its twin/update requests answered 200)."""
    for line in edge.get("/metrics").text.splitlines():
        if (
            line.startswith("kedge_mqtt_requests_total{")
            and 'action="twin/update"' in line
            and ('code="200"' in line)
        ):
            return int(float(line.rsplit(" ", 1)[1]))
    return 0


def run(interval: str, seconds: float) -> tuple[int, int, int, float]:
    with cloud_system(len(DEVICES), ("--status-interval", interval), mapper=False) as system:
        system.cloud.apiserver.kubectl("apply", "-f", str(system.manifest))
        edge = system.edge
        wait_for(lambda: len(edge.get("/v1/devices").json()["items"]) == len(DEVICES),
                 timeout=60, what="the devices at the edge")  # fmt: skip
        api = config.new_client_from_config(config_file=str(system.cloud.apiserver.kubeconfig))
        counter = WriteCounter(api)
        counter.writes, before = 0, accepted(edge)
        sent = flood(system.broker.port, seconds)
        started = time.monotonic()
        wait_for(lambda: all(counter.last.get(n) == FINAL for n in DEVICES), timeout=120,
                 what="the last value in every Device.status")  # fmt: skip
        converged = time.monotonic() - started
        counter.stop()
        return sent, accepted(edge) - before, counter.writes, converged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    for label, interval in (("default (1 s per device)", "1"), ("baseline (no interval)", "0")):
        sent, values, writes, converged = run(interval, args.seconds)
        print(
            f"{label}: {sent} reports published in {args.seconds:.0f} s, {values} accepted "
            f"by the edge ({sent - values} lost to QoS 0) -> {writes} status writes"
        )
        print(f"  {writes / values:.4f} API writes per reported value, "
              f"{writes / args.seconds:.1f} writes/s; the last value was in Device.status "
              f"{converged:.2f} s after the flood")  # fmt: skip


if __name__ == "__main__":
    main()
