"""`kubectl patch` of a desired value -> the value reported back in `Device.status` (p50/p99).

The patch is the request kubectl sends (a merge patch of `spec.properties`, through the official
client); the clock stops when a watch on the Device shows the setpoint reported with that value,
i.e. API server -> cloudcore -> CloudHub -> edgecore -> MQTT -> Modbus mapper -> simulator and
all the way back through the status writer. Baseline in the same run: the edge-only path (HTTP
PUT desired at the edge -> reported at the edge) on the same edge, mapper and simulator.
Target: p99 < 300 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
import time
from typing import Any

from kubernetes import client, config, watch

from bench.cloud import cloud_system
from bench.harness import desired_round_trips, percentile, summary
from harness.support import wait_for
from kedge.channel.routes import EDGE_VERSIONS

GROUP, VERSION, NAME = "devices.kubeedge.io", "v1beta1", "modbus-000"
DEVICE = f"default/{NAME}"


def reported(device: dict[str, Any], prop: str) -> str | None:
    for twin in (device.get("status") or {}).get("twins") or []:
        if twin.get("propertyName") == prop:
            return str((twin.get("reported") or {}).get("value"))
    return None


class StatusWatch:
    """The latest reported setpoint of the Device, from a watch (official client, a thread)."""

    def __init__(self, api: client.ApiClient) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.value: str | None = None
        self.changed = threading.Condition()
        self._watch = watch.Watch()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        with contextlib.suppress(Exception):  # the watch breaks when the API server stops
            self._watch_events()

    def _watch_events(self) -> None:
        for event in self._watch.stream(
            self.custom.list_namespaced_custom_object, GROUP, VERSION, "default",
            "devicestatuses", field_selector=f"metadata.name={NAME}",
        ):  # fmt: skip
            with self.changed:
                self.value = reported(event["object"], "setpoint")
                self.changed.notify_all()

    def wait_for(self, value: str, timeout: float = 10) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: self.value == value, timeout):
                raise TimeoutError(f"setpoint {value} never reported in the DeviceStatus")

    def stop(self) -> None:
        self._watch.stop()


def patch_round_trips(api: client.ApiClient, status: StatusWatch, count: int) -> list[float]:
    custom = client.CustomObjectsApi(api)
    device = custom.get_namespaced_custom_object(GROUP, VERSION, "default", "devices", NAME)
    properties = device["spec"]["properties"]
    samples = []
    for i in range(count):
        value = ("22", "23")[i % 2]
        for entry in properties:
            if entry["name"] == "setpoint":
                entry["desired"] = {"value": value}
        start = time.perf_counter()
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, "default", "devices", NAME, {"spec": {"properties": properties}}
        )
        status.wait_for(value)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def wait_adopted(api: client.ApiClient, edge_count: int) -> None:
    """Until the Device shows the edge's last desired write adopted (its count in the
    annotation): a patch made before would be made without seeing it, and the conflict rule
    would keep the edge's value (DesiredAccepted=False), not apply the patch."""
    custom = client.CustomObjectsApi(api)

    def adopted() -> bool:
        device = custom.get_namespaced_custom_object(GROUP, VERSION, "default", "devices", NAME)
        seen = json.loads(device["metadata"].get("annotations", {}).get(EDGE_VERSIONS, "{}"))
        return int(seen.get("setpoint", 0)) >= edge_count

    wait_for(adopted, timeout=60, what="the edge's desired writes adopted into the Device")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    with cloud_system(1) as system:
        system.cloud.apiserver.kubectl("apply", "-f", str(system.manifest))
        edge = system.edge
        wait_for(lambda: edge.get(f"/v1/devices/{DEVICE}").status_code == 200
                 and edge.get(f"/v1/devices/{DEVICE}").json()["state"] == "online",
                 timeout=60, what="the device online at the edge")  # fmt: skip
        baseline = desired_round_trips(edge.base, DEVICE, "setpoint", ["22", "23"], args.count)
        api = config.new_client_from_config(config_file=str(system.cloud.apiserver.kubeconfig))
        wait_adopted(api, edge.twin(DEVICE, "setpoint")["desired"]["version"]["edge"])
        status = StatusWatch(api)
        patch_round_trips(api, status, 10)  # warm-up
        measured = patch_round_trips(api, status, args.count)
        status.stop()
    p99 = percentile(measured, 99)
    print(f"kubectl patch desired -> reported in Device.status, {args.count} patches")
    print(f"  edge only (PUT at the edge -> reported at the edge): {summary(baseline)}")
    print(f"  cloud to device and back:                           {summary(measured)}")
    print(f"  ratio p50 {percentile(measured, 50) / percentile(baseline, 50):.1f}x edge-only")
    print(f"  target p99 < 300 ms: {'MET' if p99 < 300 else 'NOT MET'}")


if __name__ == "__main__":
    main()
