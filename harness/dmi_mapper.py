"""A DMI mapper for tests and benchmarks, built from our .proto as any mapper-framework mapper is
built from upstream's: it serves DeviceMapperService on its own socket, registers with
edgecore's DeviceManagerService, and writes every call it receives to a JSON-lines log.

`python -m harness.dmi_mapper --edge EDGE_SOCK --socket OWN_SOCK --protocol P --log FILE
[--with-data]`; `DmiMapperProcess` runs it as a child process (so a test can kill it).
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import threading
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import struct_pb2, wrappers_pb2
from google.protobuf.json_format import MessageToDict

from harness.support import ROOT, fresh, ready_or_ended
from kedge.dmi import pb, services

WELL_KNOWN = (struct_pb2, wrappers_pb2)  # configData's Any values unpack through these


class Recorder(services.DeviceMapperServiceServicer):  # type: ignore[misc]
    """Answers like a mapper and logs each call; keeps devices for GetDevice."""

    def __init__(self, log: Path) -> None:
        self.log, self.lock = log.open("a", buffering=1), threading.Lock()
        self.devices: dict[tuple[str, str], Any] = {}

    def write(self, call: str, message: Any) -> None:
        line = json.dumps({"call": call, "body": MessageToDict(message)})
        with self.lock:
            self.log.write(line + "\n")

    def RegisterDevice(self, request: Any, context: Any) -> Any:  # noqa: N802
        self.write("RegisterDevice", request)
        device = request.device
        self.devices[(device.namespace, device.name)] = device
        return pb.RegisterDeviceResponse(deviceName=device.name, deviceNamespace=device.namespace)

    def UpdateDevice(self, request: Any, context: Any) -> Any:  # noqa: N802
        self.write("UpdateDevice", request)
        self.devices[(request.device.namespace, request.device.name)] = request.device
        return pb.UpdateDeviceResponse()

    def RemoveDevice(self, request: Any, context: Any) -> Any:  # noqa: N802
        self.write("RemoveDevice", request)
        self.devices.pop((request.deviceNamespace, request.deviceName), None)
        return pb.RemoveDeviceResponse()

    def CreateDeviceModel(self, request: Any, context: Any) -> Any:  # noqa: N802
        self.write("CreateDeviceModel", request)
        return pb.CreateDeviceModelResponse(
            deviceModelName=request.model.name, deviceModelNamespace=request.model.namespace
        )

    def UpdateDeviceModel(self, request: Any, context: Any) -> Any:  # noqa: N802
        self.write("UpdateDeviceModel", request)
        return pb.UpdateDeviceModelResponse()

    def RemoveDeviceModel(self, request: Any, context: Any) -> Any:  # noqa: N802
        self.write("RemoveDeviceModel", request)
        return pb.RemoveDeviceModelResponse()

    def GetDevice(self, request: Any, context: Any) -> Any:  # noqa: N802
        device = self.devices.get((request.deviceNamespace, request.deviceName))
        if device is None:
            context.abort(grpc.StatusCode.NOT_FOUND, "no such device")
        return pb.GetDeviceResponse(device=device)


def main() -> None:
    parser = argparse.ArgumentParser()
    for flag in ("--edge", "--socket", "--protocol", "--log"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--with-data", action="store_true")
    args = parser.parse_args()
    # SIGTERM is taken by sigwait below: blocked here, before gRPC starts its threads
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    recorder = Recorder(Path(args.log))
    server = grpc.server(futures.ThreadPoolExecutor(4))
    services.add_DeviceMapperServiceServicer_to_server(recorder, server)
    server.add_insecure_port(f"unix:{args.socket}")
    server.start()
    with grpc.insecure_channel(f"unix:{args.edge}") as channel:
        info = pb.MapperInfo(
            name=f"test-{args.protocol}",
            version="v1",
            api_version="v1beta1",
            protocol=args.protocol,
            address=args.socket.encode(),
            state="ok",
        )
        stub = services.DeviceManagerServiceStub(channel)
        reply = stub.MapperRegister(
            pb.MapperRegisterRequest(withData=args.with_data, mapper=info), timeout=10
        )
    for device in reply.deviceList:
        recorder.devices[(device.namespace, device.name)] = device
    recorder.write("MapperRegister", reply)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    server.stop(1)


@dataclass
class DmiMapperProcess:
    """The mapper above as a child process; `calls()` reads what it received."""

    edge_socket: Path
    socket: Path
    protocol: str
    log: Path
    with_data: bool = False
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> DmiMapperProcess:
        argv = [
            sys.executable,
            "-m",
            "harness.dmi_mapper",
            "--edge",
            str(self.edge_socket),
            "--socket",
            str(self.socket),
            "--protocol",
            self.protocol,
            "--log",
            str(self.log),
        ]
        if self.with_data:
            argv.append("--with-data")
        fresh(self.process)
        with self.log.with_suffix(".err").open("ab") as err:
            self.process = subprocess.Popen(argv, stderr=err, cwd=ROOT)
        ready_or_ended(self.process, lambda: self.calls("MapperRegister"), 20,
                       "the DMI mapper to register")  # fmt: skip
        return self

    def calls(self, name: str | None = None) -> list[dict[str, Any]]:
        if self.process is not None and self.process.poll() not in (None, -9, -15):
            err = self.log.with_suffix(".err").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"DMI mapper exited: {err}")
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        entries = [json.loads(line) for line in lines]
        return [e["body"] for e in entries if name is None or e["call"] == name]

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


if __name__ == "__main__":
    main()
