"""Reported-twin ingest through one edgecore over DMI (gRPC on a Unix socket, as KubeEdge's
mapper-framework mappers report) next to the MQTT path, same edgecore, same run.

Throughput: closed loops keep WINDOW reports in flight. Over MQTT an update counts when its
`/result` arrives (bench/loadclient.py); over DMI when ReportDeviceStatus returns (the report is
then in SQLite). Each report carries one twin, as the mapper framework sends them. Latency: a
report every few ms, timed from the send to its `document` event on MQTT. Twice: with DMI's
gRPC in edgecore's own loop, and from its worker process (`--dmi-worker`), each edgecore also
measuring its MQTT path. Target: DMI ingest at least the MQTT path's.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import orjson
import paho.mqtt.client as mqtt
import psutil
from paho.mqtt.enums import CallbackAPIVersion

from bench import h2load
from bench.harness import device_ids, edge_node, summary
from bench.loadclient import WINDOW, measure
from bench.twin_ingest import updates
from harness.dmi_mapper import DmiMapperProcess
from harness.support import EdgeProcess, Mosquitto, wait_for
from kedge.dmi import pb, services
from kedge.grpcwire.server import GrpcServer

CLIENTS = 2  # DMI client processes (bench/h2load.py), as the MQTT path's client has two
FRESH = 64  # calls at a time when each has its own connection
GRPCIO_WINDOW = 250  # grpcio's server refuses most calls beyond some hundreds in flight


def _dmi_request(device: str, value: str) -> Any:
    namespace, name = device.split("/")
    twin = pb.Twin(propertyName="temperature", reported=pb.TwinProperty(value=value))
    return pb.ReportDeviceStatusRequest(deviceName=name, deviceNamespace=namespace,
                                        reportedDevice=pb.DeviceStatus(twins=[twin]))  # fmt: skip


REPORT = "/v1beta1.DeviceManagerService/ReportDeviceStatus"


def _messages(devices: list[str]) -> list[bytes]:
    return [_dmi_request(d, f"{20 + n % 97 / 10:.1f}").SerializeToString()
            for n, d in enumerate(devices * 10)]  # fmt: skip


def _trivial_grpcio(socket: str) -> None:
    """grpcio's own ceiling: a ReportDeviceStatus that does nothing, on its own socket."""

    async def handler(_request: Any, _context: Any) -> Any:
        return pb.ReportDeviceStatusResponse()

    async def run() -> None:
        server = grpc.aio.server()
        method = grpc.unary_unary_rpc_method_handler(
            handler, request_deserializer=pb.ReportDeviceStatusRequest.FromString,
            response_serializer=pb.ReportDeviceStatusResponse.SerializeToString)  # fmt: skip
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
            "v1beta1.DeviceManagerService", {"ReportDeviceStatus": method}),))  # fmt: skip
        server.add_insecure_port(f"unix:{socket}")
        await server.start()
        await server.wait_for_termination()

    asyncio.run(run())


def _trivial_wire(socket: str) -> None:
    """kedge.grpcwire's own ceiling: the same call decoded and answered, nothing stored."""

    def handler(data: bytes) -> bytes:
        pb.ReportDeviceStatusRequest.FromString(data)
        return b""

    async def run() -> None:
        server = GrpcServer({REPORT: handler})
        await server.start(Path(socket))
        await asyncio.Event().wait()

    asyncio.run(run())


def ceiling(target: Callable[[str], None], socket: Path, devices: list[str], seconds: float,
            warmup: float, window: int = WINDOW) -> float:  # fmt: skip
    """Calls/s the same clients get from a server that does nothing (same run)."""
    server = mp.get_context("spawn").Process(target=target, args=(str(socket),))
    server.start()
    try:
        wait_for(socket.exists, timeout=30, what="the trivial gRPC server")
        return dmi_measure(socket, devices, seconds, warmup, window=window)[0]
    finally:
        server.kill()
        server.join(10)


def dmi_measure(socket: Path, devices: list[str], seconds: float, warmup: float,
                fresh: bool = False, window: int = WINDOW
                ) -> tuple[float, list[float]]:  # fmt: skip
    """Reports/s over `seconds` after `warmup` (CLIENTS processes, WINDOW in flight in all on
    one connection each; `fresh`: FRESH at a time, each on a connection of its own)."""
    ctx = mp.get_context("spawn")
    counters = [ctx.Value("q", 0, lock=False) for _ in range(CLIENTS)]
    failed = [ctx.Value("q", 0, lock=False) for _ in range(CLIENTS)]
    window = (FRESH if fresh else window) // CLIENTS  # as many as the MQTT client keeps
    target = h2load.run_fresh if fresh else h2load.run
    messages = _messages(devices)
    procs = [
        ctx.Process(target=target,
                    args=(str(socket), REPORT, messages, window, warmup + seconds, c, f))
        for c, f in zip(counters, failed, strict=True)
    ]  # fmt: skip
    for proc in procs:
        proc.start()

    def total() -> int:
        return sum(c.value for c in counters)

    time.sleep(warmup)  # benchmark pacing, not synchronisation
    start_count, start = total(), time.monotonic()
    slices, last_count, last = [], start_count, start
    while (now := time.monotonic()) < start + seconds:
        time.sleep(min(10.0, start + seconds - now))  # benchmark pacing
        count, now = total(), time.monotonic()
        slices.append((count - last_count) / (now - last))
        last_count, last = count, now
    rate = (total() - start_count) / (time.monotonic() - start)
    for proc in procs:
        proc.join(60)
    bad = sum(f.value for f in failed)
    if bad:
        raise RuntimeError(f"{bad} calls were not answered OK")
    return rate, slices


def latencies(broker: Mosquitto, send: Callable[[str, str], object], devices: list[str],
              count: int) -> list[float]:  # fmt: skip
    """ms from sending a report to its `document` event, one report every 5 ms."""
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    done = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2)

    def on_message(_c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        body = orjson.loads(message.payload)
        current = ((body.get("twin") or {}).get("temperature") or {}).get("current") or {}
        value = (current.get("actual") or {}).get("value")
        if value in sent and value not in seen:
            seen[value] = time.perf_counter()
            if len(seen) == count:
                done.set()

    client.on_message = on_message
    subscribed = threading.Event()
    client.on_subscribe = lambda *_a: subscribed.set()
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    client.subscribe("$hw/events/device/+/+/twin/update/document")
    subscribed.wait(10)
    calls = []  # kept: a gRPC future dropped is a call cancelled
    for n in range(count):
        value = f"{1000 + n}.25"
        sent[value] = time.perf_counter()
        calls.append(send(devices[n % len(devices)], value))
        time.sleep(0.005)  # benchmark pacing: an unloaded edge
    done.wait(30)
    client.loop_stop()
    client.disconnect()
    return [(seen[v] - t) * 1000 for v, t in sent.items() if v in seen]


def settle(socket: Path, devices: list[str]) -> None:
    """Every device reports its desired set-point: nothing is left to retry."""
    with grpc.insecure_channel(f"unix:{socket}") as channel:
        stub = services.DeviceManagerServiceStub(channel)
        for device in devices:
            namespace, name = device.split("/")
            twin = pb.Twin(propertyName="setpoint", reported=pb.TwinProperty(value="20"))
            stub.ReportDeviceStatus(pb.ReportDeviceStatusRequest(
                deviceName=name, deviceNamespace=namespace,
                reportedDevice=pb.DeviceStatus(twins=[twin])), timeout=10)  # fmt: skip
    time.sleep(2)  # benchmark pacing: let the last retries scheduled before this fall due


def idle(edge: EdgeProcess, mapper: DmiMapperProcess, seconds: float) -> tuple[float, int]:
    """edgecore's CPU, its DMI worker's included (% of one core), and the DMI calls it made
    while nothing changed."""
    assert edge.process is not None
    process = psutil.Process(edge.process.pid)
    family = [process, *process.children(recursive=True)]
    calls, cpu = len(mapper.calls()), [p.cpu_times() for p in family]
    time.sleep(seconds)  # measuring an idle window
    used = sum(a.user + a.system - b.user - b.system
               for a, b in zip((p.cpu_times() for p in family), cpu, strict=True))  # fmt: skip
    return 100 * used / seconds, len(mapper.calls()) - calls


def _mqtt_sender(broker: Mosquitto) -> tuple[mqtt.Client, Callable[[str, str], None]]:
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()

    def send(device: str, value: str) -> None:
        payload = f'{{"twin":{{"temperature":{{"actual":{{"value":"{value}"}}}}}}}}'
        client.publish(f"$hw/events/device/{device}/twin/update", payload)

    return client, send


def _edge_run(devices: list[str], args: argparse.Namespace, sockets: Path, worker: bool
              ) -> dict[str, Any]:  # fmt: skip
    """Both paths through one edgecore (`worker`: DMI's gRPC in its worker process)."""
    run = "worker" if worker else "inline"
    socket = sockets / f"dmi-{run}.sock"
    flags = ["--dmi-socket", str(socket), *(["--dmi-worker"] if worker else [])]
    out: dict[str, Any] = {}
    with edge_node(len(devices), flags) as (broker, edge):
        mapper = DmiMapperProcess(socket, sockets / f"m-{run}.sock", "modbus",
                                  sockets / f"{run}.jsonl", with_data=True).start()  # fmt: skip
        try:
            settle(socket, devices)
            out["idle"] = idle(edge, mapper, 20.0)
            out["mqtt"] = measure(broker.port, "$hw/events/device/+/+/twin/update/result",
                                  updates(devices), args.seconds, args.warmup)  # fmt: skip
            out["dmi"] = dmi_measure(socket, devices, args.seconds, args.warmup)
            out["fresh"] = dmi_measure(socket, devices, args.seconds, args.warmup, True)[0]
            out["latency"] = _latencies(broker, socket, devices)
        finally:
            mapper.stop()
    return out


def _latencies(broker: Mosquitto, socket: Path, devices: list[str]
               ) -> tuple[list[float], list[float]]:  # fmt: skip
    """Report -> `document`, over MQTT and over DMI."""
    client, mqtt_send = _mqtt_sender(broker)
    mqtt_latency = latencies(broker, mqtt_send, devices, 1000)
    client.loop_stop()
    client.disconnect()
    with grpc.insecure_channel(f"unix:{socket}") as channel:
        stub = services.DeviceManagerServiceStub(channel)

        def dmi_send(device: str, value: str) -> object:
            return stub.ReportDeviceStatus.future(_dmi_request(device, value), timeout=30)

        return mqtt_latency, latencies(broker, dmi_send, devices, 1000)


def _report(name: str, run: dict[str, Any]) -> None:
    (mqtt_rate, errors, mqtt_slices), (dmi_rate, dmi_slices) = run["mqtt"], run["dmi"]
    print(f"  {name}")
    print(f"    MQTT twin/update -> /result: {mqtt_rate:,.0f} updates/s (error replies {errors})")
    print(f"    DMI ReportDeviceStatus:      {dmi_rate:,.0f} reports/s "
          f"({dmi_rate / mqtt_rate:.0%} of MQTT)")  # fmt: skip
    print(f"    DMI, a new connection per report (as mapper-framework's grpcclient): "
          f"{run['fresh']:,.0f} reports/s")  # fmt: skip
    print(f"    per 10 s, MQTT: {' '.join(f'{r:,.0f}' for r in mqtt_slices)}")
    print(f"    per 10 s, DMI:  {' '.join(f'{r:,.0f}' for r in dmi_slices)}")
    print(f"    report -> document, MQTT: {summary(run['latency'][0])}")
    print(f"    report -> document, DMI:  {summary(run['latency'][1])}")
    print(f"    idle, DMI mapper registered, 20 s: edgecore {run['idle'][0]:.1f} % of a core, "
          f"{run['idle'][1]} DMI calls")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    args = parser.parse_args()
    devices = device_ids(100)
    sockets = Path(tempfile.mkdtemp(prefix="kdmi-", dir="/tmp"))
    try:
        runs = {"DMI in edgecore's loop": _edge_run(devices, args, sockets, False),
                "DMI from its worker process (--dmi-worker)":
                    _edge_run(devices, args, sockets, True)}  # fmt: skip
        top = ceiling(_trivial_grpcio, sockets / "grpcio.sock", devices, args.seconds,
                      args.warmup, GRPCIO_WINDOW)  # fmt: skip
        wire = ceiling(_trivial_wire, sockets / "wire.sock", devices, args.seconds, args.warmup)
    finally:
        shutil.rmtree(sockets, ignore_errors=True)
    print(f"twin ingest through one edgecore, 100 devices, {args.seconds:.0f} s each")
    for name, run in runs.items():
        _report(name, run)
    print(f"  grpcio, a handler doing nothing: {top:,.0f} calls/s")
    print(f"  kedge.grpcwire, a handler decoding the request only: {wire:,.0f} calls/s")
    met = [name for name, run in runs.items() if run["dmi"][0] >= run["mqtt"][0]]
    print(f"  target DMI ingest >= MQTT ingest: {'MET by ' + ', '.join(met) if met else 'NOT MET'}")


if __name__ == "__main__":
    main()
