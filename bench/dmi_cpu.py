"""edgecore's CPU per reported twin, DMI against MQTT, in one process and the same run.

bench/dmi_ingest.py measures throughput through sockets, where the MQTT path's figure swings
with mosquitto and its client on the same two cores. This measures what only edgecore's own
code costs: the event loop thread's CPU time (`time.thread_time`) per report, fed from memory.
DMI: HTTP/2 frames as grpc-go sends them (bench/h2load's header blocks) into kedge.grpcwire's
Connection, the real DeviceManager and TwinService on SQLite, its `document` events framed as
MQTT publishes. MQTT: PUBLISH packets into kedge.mqtt's MqttConnection, the same TwinService,
its results and documents framed back. Also each half alone: the gRPC layer with a handler
that answers at once, and DeviceManager's handler called without the gRPC layer. Transports
write into memory; the SQLite commits are real (their thread is not counted, for either path).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any

from bench.h2load import header_blocks
from devicetwin.events import Outbound
from devicetwin.model import Device, DeviceId, PropertySpec, Twin
from devicetwin.service import TwinService
from devicetwin.store import TwinStore
from edgecore.dmi.server import DeviceManager, methods
from kedge import mqttwire
from kedge.dmi import pb
from kedge.grpcwire.connection import Connection
from kedge.grpcwire.frames import PREFACE, Flag, Frame, frame, settings
from kedge.grpcwire.server import GrpcServer
from kedge.mqtt import MqttConnection, MqttSettings

DEVICES = 1000
REPORTS = 4992  # 78 reads of 64, within one cycle of h2load's header blocks
BATCH = 64  # reports per socket read
IN_FLIGHT = 256  # reports unanswered before the feeder waits, as a client's window
REPORT = "/v1beta1.DeviceManagerService/ReportDeviceStatus"


class Sink(asyncio.Transport):
    """A transport that keeps what is written, in memory."""

    def __init__(self) -> None:
        super().__init__()
        self.written = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += len(data)

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        """Nothing to pause: the bench feeds at its own pace."""

    def resume_reading(self) -> None:
        """Nothing to resume."""


class Dmi:
    """A DMI mapper of every device: DeviceManager reads only which protocols have one."""

    links = {"bench": None}


def _value(n: int) -> str:
    return f"{20 + n % 97 / 10:.1f}"


def _device(i: int) -> Device:
    return Device(id=DeviceId(f"default/d{i}"), name=f"d{i}", namespace="default",
                  protocol="bench", twins={"temperature": Twin("temperature")},
                  properties={"temperature": PropertySpec("temperature")})  # fmt: skip


async def _service(state: Path) -> TwinService:
    service = TwinService("bench-node", TwinStore(state / "edgecore.db"))
    await service.adopt([_device(i) for i in range(DEVICES)])
    await service.commit(service.take_batch())
    return service


def _mqtt_out() -> Callable[[Iterable[Outbound]], None]:
    """A publish as edgecore's event bus does it, on an MQTT connection writing into memory."""
    connection = MqttConnection(MqttSettings("127.0.0.1"), "bench", lambda _burst: None)
    connection.connection_made(Sink())

    def publish(events: Iterable[Outbound]) -> None:
        for event in events:
            connection.publish(event.topic, event.payload)

    return publish


def _reports() -> list[bytes]:
    return [pb.ReportDeviceStatusRequest(
        deviceName=f"d{n % DEVICES}", deviceNamespace="default",
        reportedDevice=pb.DeviceStatus(twins=[pb.Twin(
            propertyName="temperature", reported=pb.TwinProperty(value=_value(n)))]),
    ).SerializeToString() for n in range(REPORTS)]  # fmt: skip


def _grpc_reads(messages: list[bytes]) -> list[bytes]:
    """The socket reads of a grpc-go client: a call's HEADERS and DATA, BATCH calls a read."""
    blocks, calls = header_blocks(REPORT), []
    for n, message in enumerate(messages):
        stream = 2 * n + 1
        calls.append(frame(Frame.HEADERS, Flag.END_HEADERS, stream, blocks[n])
                     + frame(Frame.DATA, Flag.END_STREAM, stream,
                             len(message).to_bytes(5) + message))  # fmt: skip
    return [b"".join(calls[i : i + BATCH]) for i in range(0, len(calls), BATCH)]


async def _settle(done: Callable[[], bool]) -> None:
    while not done():  # noqa: ASYNC110 - polls the commit thread (a sleep costs no counted CPU)
        await asyncio.sleep(0.0002)  # the commit thread's turn, counted for neither path


async def _feed_grpc(server: GrpcServer) -> float:
    """Loop-thread CPU seconds for every report through a Connection of `server`."""
    connection = Connection(server)
    connection.connection_made(Sink())
    connection.data_received(PREFACE + settings({}))
    reads = _grpc_reads(_reports())
    started = time.thread_time()
    for data in reads:
        await _settle(lambda: len(connection.streams) <= IN_FLIGHT)
        connection.data_received(data)
        await asyncio.sleep(0)
    await _settle(lambda: not connection.streams)
    return time.thread_time() - started


async def dmi(state: Path) -> float:
    service = await _service(state)
    manager = DeviceManager(service, Dmi(), _mqtt_out())  # type: ignore[arg-type]
    try:
        return await _feed_grpc(GrpcServer(methods(manager)))
    finally:
        await service.close()


async def wire(_state: Path) -> float:
    """The gRPC layer alone: each report decoded by protobuf and answered at once."""

    def handler(data: bytes) -> bytes:
        pb.ReportDeviceStatusRequest.FromString(data)
        return b""

    return await _feed_grpc(GrpcServer({REPORT: handler}))


async def handler(state: Path) -> float:
    """DeviceManager alone: its handler called with each message, answered after the commit."""
    service = await _service(state)
    handle = methods(DeviceManager(service, Dmi(), _mqtt_out()))[REPORT]  # type: ignore[arg-type]
    answered = [0]

    def count(_answer: Any) -> None:
        answered[0] += 1

    messages = _reports()
    started = time.thread_time()
    for at in range(0, REPORTS, BATCH):
        await _settle(lambda at=at: at - answered[0] <= IN_FLIGHT)  # type: ignore[misc]
        for message in messages[at : at + BATCH]:
            handle(message).on_settle(count)  # type: ignore[union-attr]
        await asyncio.sleep(0)
    await _settle(lambda: answered[0] == REPORTS)
    took = time.thread_time() - started
    await service.close()
    return took


async def mqtt(state: Path) -> float:
    """The MQTT path as edgecore's event bus runs it: a read's burst handled, committed once,
    its replies published after the commit."""
    service = await _service(state)
    pending: list[asyncio.Future[None]] = []
    publish = _mqtt_out()

    def on_burst(burst: list[tuple[str, bytes]]) -> None:
        handled = [service.handle(topic, payload) for topic, payload in burst]
        committed = service.submit(service.take_batch())
        committed.add_done_callback(lambda _f: publish(r for item in handled for r in item.replies))
        pending.append(committed)

    inbound = MqttConnection(MqttSettings("127.0.0.1"), "edgecore", on_burst)
    inbound.connection_made(Sink())
    reads = [b"".join(mqttwire.publish(
        f"$hw/events/device/default/d{n % DEVICES}/twin/update",
        b'{"event_id":"","twin":{"temperature":{"actual":{"value":"%s"}}}}' % _value(n).encode())
        for n in range(at, at + BATCH)) for at in range(0, REPORTS, BATCH)]  # fmt: skip
    started = time.thread_time()
    for data in reads:
        await _settle(lambda: sum(not f.done() for f in pending) * BATCH <= IN_FLIGHT)
        inbound.data_received(data)
        await asyncio.sleep(0)
    await _settle(lambda: all(f.done() for f in pending))
    took = time.thread_time() - started
    await service.close()
    return took


def _run(case: Callable[[Path], Coroutine[Any, Any, float]]) -> float:
    with tempfile.TemporaryDirectory(prefix="kedge-bench-") as state:
        return asyncio.run(case(Path(state))) / REPORTS * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7, help="runs of each case, interleaved")
    args = parser.parse_args()
    cases = {"MQTT update": mqtt, "DMI report": dmi, "  gRPC layer alone": wire,
             "  DeviceManager alone": handler}  # fmt: skip
    figures: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, case in cases.items():
            figures[name].append(_run(case))
    base = statistics.median(figures["MQTT update"])
    print(f"loop-thread CPU per report, median of {args.rounds} ({REPORTS} reports each)")
    for name, values in figures.items():
        middle = statistics.median(values)
        print(f"{name:24} {middle:6.1f} us  ({min(values):.1f}-{max(values):.1f})"
              f"  {middle / base:.2f}x MQTT")  # fmt: skip


if __name__ == "__main__":
    main()
