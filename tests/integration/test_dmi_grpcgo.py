"""KubeEdge's DMI with grpc-go, the gRPC implementation of KubeEdge's mapper framework (Debian's
sources; make test installs them), on both sides: a grpc-go client reporting through edgecore's
own gRPC server, and a mapper's DeviceMapperService served by grpc-go that edgecore's grpcio
client calls."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from harness.support import EdgeProcess, ready_or_ended, wait_for
from kedge.dmi import pb
from tests.integration.test_dmi import _mapper, _report

GO_CLIENT = Path(__file__).parent / "grpcgo"
REPORT = "/v1beta1.DeviceManagerService/ReportDeviceStatus"


@pytest.fixture(scope="module")
def grpc_go(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The grpc-go DMI client (grpcgo/main.go), built against Debian's grpc-go sources."""
    out = tmp_path_factory.mktemp("grpcgo")
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": "/usr/share/gocode",
           "GOCACHE": str(out / "cache")}  # fmt: skip
    subprocess.run(["go", "build", "-o", str(out / "client"), "main.go"], cwd=GO_CLIENT,
                   env=env, check=True, timeout=600)  # fmt: skip
    return out / "client"


def _go_calls(client: Path, socket: Path, batches: list[tuple[bytes, int, bool]],
              method: str = REPORT) -> list[tuple[int, str]]:  # fmt: skip
    """(gRPC code, message) per call; a batch: request, calls, a connection per call."""
    lines = "".join(f"{method} {request.hex()} {count} {int(fresh)}\n"
                    for request, count, fresh in batches)  # fmt: skip
    done = subprocess.run([str(client), str(socket)], input=lines.encode(), capture_output=True,
                          check=True, timeout=120)  # fmt: skip
    results = [line.split(" ", 2) for line in done.stdout.decode().splitlines()]
    assert all(response == "" for _, response, _ in results)  # every answer is empty
    return [(int(code), message) for code, _, message in results]


def test_a_grpc_go_client_reports_through_edgecore(
    dmi_edge: EdgeProcess, sockets: Path, tmp_path: Path, grpc_go: Path
) -> None:
    mapper = _mapper(sockets, tmp_path, "m5", with_data=True)
    try:
        report = _report("thermo-1", "temperature", "23.5").SerializeToString()
        calls = _go_calls(grpc_go, sockets / "dmi.sock", [
            (report, 1, False),
            (report, 300, False),  # in flight together: grpc-go's HPACK table moves every call
            (report, 20, True),  # a connection per call, as the framework's report.go does
            (_report("ghost", "temperature", "1").SerializeToString(), 1, False),
            (_report("meter-1", "power", "5").SerializeToString(), 1, False),
            (_report("thermo-1", "temperature", "warm").SerializeToString(), 1, False),
            (b"\xff\xff\xff", 1, False),
        ])  # fmt: skip
        assert calls[:321] == [(0, "")] * 321
        assert calls[321] == (5, "device default/ghost is not bound to node edge-node-1")
        assert calls[322][0] == 9 and "no DMI mapper registered" in calls[322][1]
        assert calls[323][0] == 3 and "warm" in calls[323][1]
        assert calls[324][0] == 3 and "not a valid ReportDeviceStatusRequest" in calls[324][1]
        assert dmi_edge.twin("default/thermo-1", "temperature")["reported"]["value"] == "23.5"
        assert dmi_edge.healthy() and "gRPC client connection ended" not in dmi_edge.log()
    finally:
        mapper.stop()


MAPPER = "/v1beta1.DeviceMapperService/"


def _served(log: Path, method: str) -> list[bytes]:
    """The requests the grpc-go mapper got for `method`, in order."""
    lines = log.read_text().splitlines() if log.exists() else []
    return [bytes.fromhex(r) for m, _, r in (line.partition(" ") for line in lines)
            if m == MAPPER + method]  # fmt: skip


def test_edgecore_calls_a_mapper_served_by_grpc_go(
    dmi_edge: EdgeProcess, sockets: Path, tmp_path: Path, grpc_go: Path
) -> None:
    socket, log = sockets / "go.sock", tmp_path / "go-mapper.log"
    with log.open("wb") as out:
        server = subprocess.Popen([str(grpc_go), "serve", str(socket)], stdout=out)
    try:
        ready_or_ended(server, socket.exists, 10, "the grpc-go mapper to listen")
        info = pb.MapperInfo(
            name="go-mapper",
            version="v1.23",
            api_version="v1beta1",
            protocol="virtual",
            address=str(socket).encode(),
            state="ok",
        )
        register = pb.MapperRegisterRequest(withData=False, mapper=info).SerializeToString()
        done = _go_calls(
            grpc_go,
            sockets / "dmi.sock",
            [(register, 1, False)],
            method="/v1beta1.DeviceManagerService/MapperRegister",
        )
        assert done == [(0, "")]
        registered = wait_for(
            lambda: _served(log, "RegisterDevice"),
            timeout=20,
            what="RegisterDevice at the grpc-go mapper",
        )
        device = pb.RegisterDeviceRequest.FromString(registered[0]).device
        assert (device.name, device.namespace) == ("thermo-1", "default")
        models = [
            pb.CreateDeviceModelRequest.FromString(r).model.name
            for r in _served(log, "CreateDeviceModel")
        ]
        assert models == ["thermometer-model"]  # before its device, its protocol's only

        dmi_edge.put("/v1/devices/default/thermo-1/twin/setpoint/desired", json={"value": "61"})

        def desired() -> list[str]:
            updates = [
                pb.UpdateDeviceRequest.FromString(r).device for r in _served(log, "UpdateDevice")
            ]
            return [
                t.observedDesired.value
                for d in updates
                for t in d.status.twins
                if t.propertyName == "setpoint"
            ]

        assert "61" in wait_for(desired, timeout=20, what="UpdateDevice with the new setpoint")
        assert "DMI UpdateDevice failed" not in dmi_edge.log()
    finally:
        server.terminate()
        server.wait(10)
