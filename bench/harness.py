"""Shared set-up for benchmarks: a 100-device manifest, mosquitto and edgecore processes."""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

from harness.support import SAMPLES, EdgeProcess, Mosquitto, free_port, port_open, wait_for

NODE = "bench-node"
MODEL = """apiVersion: devices.kubeedge.io/v1beta1
kind: DeviceModel
metadata: {name: bench-model, namespace: default}
spec:
  protocol: modbus
  properties:
    - {name: temperature, type: FLOAT, accessMode: ReadOnly}
    - {name: humidity, type: FLOAT, accessMode: ReadOnly}
    - {name: setpoint, type: INT, accessMode: ReadWrite, minimum: "0", maximum: "1000000"}
    - {name: power, type: BOOLEAN, accessMode: ReadWrite}
    - {name: label, type: STRING, accessMode: ReadWrite}
"""
DEVICE = """---
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: {{name: bench-{i:03d}, namespace: default}}
spec:
  deviceModelRef: {{name: bench-model}}
  nodeName: {node}
  protocol: {{protocolName: modbus, configData: {{ip: 127.0.0.1, port: 5020, slaveID: {i}}}}}
  properties:
    - name: setpoint
      desired: {{value: "20"}}
      visitors: {{protocolName: modbus, configData: {{register: HoldingRegister, offset: {i}}}}}
"""


def device_ids(count: int = 100) -> list[str]:
    return [f"default/bench-{i:03d}" for i in range(count)]


def write_manifest(path: Path, count: int = 100) -> Path:
    path.write_text(MODEL + "".join(DEVICE.format(i=i, node=NODE) for i in range(count)))
    return path


@contextlib.contextmanager
def edge_node(
    count: int = 100, extra: Sequence[str] = ()
) -> Iterator[tuple[Mosquitto, EdgeProcess]]:
    """mosquitto plus an edgecore (with `extra` flags) holding `count` devices, both stopped
    afterwards."""
    with tempfile.TemporaryDirectory(prefix="kedge-bench-") as tmp:
        workdir = Path(tmp)
        broker = Mosquitto(workdir).start()
        edge = EdgeProcess(
            workdir / "state",
            node=NODE,
            mqtt_url=broker.url,
            devices=[write_manifest(workdir / "devices.yaml", count)],
            extra=list(extra),
        )
        try:
            edge.start()
            yield broker, edge
        finally:
            edge.stop()
            broker.stop()


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def summary(samples: list[float]) -> str:
    return (
        f"p50 {percentile(samples, 50):.2f} ms, p99 {percentile(samples, 99):.2f} ms, "
        f"mean {statistics.fmean(samples):.2f} ms, n={len(samples)}"
    )


MODBUS_MODEL = """apiVersion: devices.kubeedge.io/v1beta1
kind: DeviceModel
metadata: {name: bench-thermostat, namespace: default}
spec:
  protocol: modbus
  properties:
    - {name: temperature, type: FLOAT, accessMode: ReadOnly}
    - {name: setpoint, type: INT, accessMode: ReadWrite, minimum: "5", maximum: "35"}
    - {name: power, type: BOOLEAN, accessMode: ReadWrite}
"""
MODBUS_DEVICE = """---
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: {{name: modbus-{i:03d}, namespace: default}}
spec:
  deviceModelRef: {{name: bench-thermostat}}
  nodeName: {node}
  protocol: {{protocolName: modbus, configData: {{ip: 127.0.0.1, port: {port}, slaveID: 1}}}}
  properties:
    - name: temperature
      visitors: {{protocolName: modbus,
                  configData: {{register: InputRegister, offset: 0, limit: 1, scale: 0.1}}}}
    - name: setpoint
      visitors: {{protocolName: modbus, configData: {{register: HoldingRegister, offset: 0}}}}
    - name: power
      visitors: {{protocolName: modbus, configData: {{register: CoilRegister, offset: 0}}}}
"""


@contextlib.contextmanager
def module_process(
    module: str, *args: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m module args` as a quiet child process, terminated on exit."""
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        yield process
    finally:
        process.terminate()
        process.wait(10)


def modbus_manifest(path: Path, count: int, node: str, port: int) -> Path:
    """A DeviceModel and `count` Modbus thermostats on `node`, at the simulator on `port`."""
    path.write_text(
        MODBUS_MODEL
        + "".join(MODBUS_DEVICE.format(i=i, node=node, port=port) for i in range(count))
    )
    return path


@contextlib.contextmanager
def modbus_system(count: int) -> Iterator[tuple[EdgeProcess, subprocess.Popen[bytes], int]]:
    """Simulator, broker, edgecore with `count` Modbus devices and the Modbus mapper."""
    with tempfile.TemporaryDirectory(prefix="kedge-bench-") as tmp:
        workdir = Path(tmp)
        port = free_port()
        manifest = modbus_manifest(workdir / "modbus.yaml", count, NODE, port)
        broker = Mosquitto(workdir).start()
        edge = EdgeProcess(workdir / "state", node=NODE, mqtt_url=broker.url, devices=[manifest])
        try:
            with module_process("simulators.modbus", "--port", str(port)):
                wait_for(lambda: port_open(port), what="simulator")
                edge.start()
                with module_process(
                    "mappers.modbus", "--node", NODE, "--mqtt", broker.url
                ) as mapper:
                    yield edge, mapper, port
        finally:
            edge.stop()
            broker.stop()


@contextlib.contextmanager
def sample_system(sample: str, replace: tuple[str, str]) -> Iterator[EdgeProcess]:
    """Broker, edgecore with one sample manifest (one text replaced, e.g. the simulator's port)
    and that protocol's mapper, whose state (e.g. a ZigBee network database) stays in a
    temporary directory. The caller runs the simulator."""
    protocol = sample.removesuffix(".yaml")
    with tempfile.TemporaryDirectory(prefix="kedge-bench-") as tmp:
        workdir = Path(tmp)
        manifest = workdir / sample
        manifest.write_text((SAMPLES / sample).read_text().replace(*replace))
        broker = Mosquitto(workdir).start()
        node = "edge-node-1"  # the samples' node
        edge = EdgeProcess(workdir / "state", node=node, mqtt_url=broker.url, devices=[manifest])
        env = {**os.environ, "XDG_STATE_HOME": str(workdir / "xdg")}
        try:
            edge.start()
            with module_process(
                f"mappers.{protocol}", "--node", node, "--mqtt", broker.url, env=env
            ):
                yield edge
        finally:
            edge.stop()
            broker.stop()


def desired_round_trips(
    base: str, device: str, prop: str, values: Sequence[str], count: int
) -> list[float]:
    """ms from a desired write over HTTP until the edge API shows that value as reported;
    values cycle so every write changes the device."""
    samples = []
    with httpx.Client(base_url=base, timeout=5) as http:
        for i in range(count):
            value = values[i % len(values)]
            start = time.perf_counter()
            http.put(
                f"/v1/devices/{device}/twin/{prop}/desired", json={"value": value}
            ).raise_for_status()
            deadline = start + 10
            while time.perf_counter() < deadline:
                twin = http.get(f"/v1/devices/{device}/twin/{prop}").json()
                if twin["reported"] and twin["reported"]["value"] == value:
                    break
            else:
                raise TimeoutError(f"{device} {prop}={value} never reported")
            samples.append((time.perf_counter() - start) * 1000)
    return samples


def setpoint_latency(edge: EdgeProcess, device: str, count: int) -> list[float]:
    """Wait until `device` is online, warm up, then time `count` setpoint writes (22/23)."""
    wait_for(
        lambda: edge.get(f"/v1/devices/{device}").json()["state"] == "online",
        timeout=60,
        what=f"{device} online",
    )
    desired_round_trips(edge.base, device, "setpoint", ["22", "23"], 20)  # warm-up
    return desired_round_trips(edge.base, device, "setpoint", ["22", "23"], count)
