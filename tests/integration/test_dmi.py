"""KubeEdge's DMI at the edge, against a mapper built from the same .proto (harness.dmi_mapper,
a child process): registration with and without data, reports and states into the same twins
MQTT apps see, desired values as UpdateDevice, refusals as gRPC statuses that change nothing,
a killed mapper's devices turning unknown, and a new registration restoring them. grpc-go's side
of it is in test_dmi_grpcgo."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import psutil
import pytest

from harness.dmi_mapper import DmiMapperProcess
from harness.support import EdgeProcess, MqttProbe, running, wait_for
from kedge.dmi import pb, services
from tests.integration.conftest import DMI_DEVICES


def _stub(sockets: Path) -> tuple[grpc.Channel, Any]:
    channel = grpc.insecure_channel(f"unix:{sockets / 'dmi.sock'}")
    return channel, services.DeviceManagerServiceStub(channel)


def _report(name: str, prop: str, value: str, observed: str | None = None,
            namespace: str = "default") -> Any:  # fmt: skip
    twin = pb.Twin(propertyName=prop, reported=pb.TwinProperty(value=value,
                   metadata={"type": "float", "timestamp": "1"}))  # fmt: skip
    if observed is not None:
        twin.observedDesired.value = observed
    return pb.ReportDeviceStatusRequest(deviceName=name, deviceNamespace=namespace,
                                        reportedDevice=pb.DeviceStatus(twins=[twin]))  # fmt: skip


def _mapper(sockets: Path, tmp_path: Path, name: str, with_data: bool) -> DmiMapperProcess:
    return DmiMapperProcess(sockets / "dmi.sock", sockets / f"{name}.sock", "virtual",
                            tmp_path / f"{name}.jsonl", with_data).start()  # fmt: skip


def _desired_in(update: dict[str, Any], prop: str) -> str | None:
    twins = update["device"].get("status", {}).get("twins", [])
    return next((t["observedDesired"]["value"] for t in twins if t["propertyName"] == prop), None)


def _updates_to(mapper: DmiMapperProcess, setpoint: str) -> list[dict[str, Any]]:
    return [u for u in mapper.calls("UpdateDevice") if _desired_in(u, "setpoint") == setpoint]


def test_mapper_registers_with_data_and_reports(
    dmi_edge: EdgeProcess, sockets: Path, tmp_path: Path
) -> None:
    assert (sockets / "dmi.sock").stat().st_mode & 0o777 == 0o600
    mapper = _mapper(sockets, tmp_path, "m1", with_data=True)
    try:
        answer = mapper.calls("MapperRegister")[0]
        assert [d["name"] for d in answer["deviceList"]] == ["thermo-1"]  # its protocol only
        assert [m["name"] for m in answer["modelList"]] == ["thermometer-model"]
        model = answer["modelList"][0]["spec"]["properties"]
        assert {p["name"]: (p["type"], p["accessMode"]) for p in model} == {
            "temperature": ("FLOAT", "ReadOnly"),
            "setpoint": ("INT", "ReadWrite"),
        }
        device = answer["deviceList"][0]
        config = device["spec"]["protocol"]["configData"]["data"]
        assert config["serialPort"] == {"@type": "type.googleapis.com/google.protobuf.StringValue",
                                        "value": "/dev/ttyS0"}  # fmt: skip
        assert (
            config["baudRate"]["@type"].endswith("Int32Value")
            and config["baudRate"]["value"] == 9600
        )
        assert config["ratio"]["value"] == 1.5 and config["enabled"]["value"] is True
        temperature = next(p for p in device["spec"]["properties"] if p["name"] == "temperature")
        assert temperature["collectCycle"] == "2000" and temperature["reportCycle"] == "2000"
        visitor = temperature["visitors"]["configData"]["data"]
        assert visitor["scale"]["@type"].endswith("Struct")
        assert visitor["scale"]["value"] == {"factor": 0.1}
        assert _desired_in({"device": device}, "setpoint") == "20"
        assert not mapper.calls("RegisterDevice")  # it had them with its answer

        port, user, password = dmi_edge.broker_credentials()
        probe = MqttProbe(port, user, password)
        probe.subscribe("$hw/events/device/default/thermo-1/twin/update/document")
        channel, stub = _stub(sockets)
        with channel:
            stub.ReportDeviceStatus(_report("thermo-1", "temperature", "21.5"), timeout=5)
            stub.ReportDeviceStatus(_report("thermo-1", "setpoint", "20", observed="20"), timeout=5)
            stub.ReportDeviceStates(
                pb.ReportDeviceStatesRequest(
                    deviceName="thermo-1", deviceNamespace="default", state="online"
                ),
                timeout=5,
            )
        document = probe.expect("$hw/events/device/default/thermo-1/twin/update/document",
                                lambda b: "temperature" in b["twin"])  # fmt: skip
        probe.close()
        assert document["twin"]["temperature"]["current"]["actual"]["value"] == "21.5"
        assert dmi_edge.twin("default/thermo-1", "temperature")["reported"]["value"] == "21.5"
        setpoint = dmi_edge.twin("default/thermo-1", "setpoint")
        assert setpoint["reported"]["value"] == setpoint["observedDesired"]["value"] == "20"
        assert dmi_edge.get("/v1/devices/default/thermo-1").json()["state"] == "online"

        # an edge-local desired value reaches the mapper as UpdateDevice
        dmi_edge.put("/v1/devices/default/thermo-1/twin/setpoint/desired", json={"value": "42"})
        update = wait_for(lambda: _updates_to(mapper, "42"), what="UpdateDevice")
        assert update[0]["device"]["spec"]["properties"][1]["desired"]["value"] == "42"
        held = dmi_edge.get("/v1/devices/default/thermo-1/mapper").json()
        assert held["mapper"] == "test-virtual" and held["device"]["name"] == "thermo-1"
    finally:
        mapper.stop()


def _code(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value.code()  # type: ignore[attr-defined, no-any-return]


def test_bad_messages_get_grpc_errors_and_change_nothing(
    dmi_edge: EdgeProcess, sockets: Path, tmp_path: Path
) -> None:
    channel, stub = _stub(sockets)
    with channel:
        early = _report("thermo-1", "temperature", "1")
        assert _code(lambda: stub.ReportDeviceStatus(early, timeout=5)) == (
            grpc.StatusCode.FAILED_PRECONDITION
        )  # no mapper registered for its protocol yet
        mapper = _mapper(sockets, tmp_path, "m2", with_data=False)
        try:
            stub.ReportDeviceStatus(_report("thermo-1", "temperature", "19.5"), timeout=5)
            bad = {
                "unknown device": _report("ghost", "temperature", "1"),
                "another node's device": _report("thermo-1", "temperature", "1", namespace="x"),
                "a protocol served by no DMI mapper": _report("meter-1", "power", "5"),
                "unknown property": _report("thermo-1", "humidity", "1"),
                "wrong type": _report("thermo-1", "temperature", "warm"),
                "empty name": _report("", "temperature", "1"),
                "oversized": _report("thermo-1", "temperature", "9" * (2 << 20)),
                "no twins": pb.ReportDeviceStatusRequest(deviceName="thermo-1"),
            }
            codes = {what: _code(lambda r=request: stub.ReportDeviceStatus(r, timeout=5))
                     for what, request in bad.items()}  # fmt: skip
            assert codes == {
                "unknown device": grpc.StatusCode.NOT_FOUND,
                "another node's device": grpc.StatusCode.NOT_FOUND,
                "a protocol served by no DMI mapper": grpc.StatusCode.FAILED_PRECONDITION,
                "unknown property": grpc.StatusCode.NOT_FOUND,
                "wrong type": grpc.StatusCode.INVALID_ARGUMENT,
                "empty name": grpc.StatusCode.INVALID_ARGUMENT,
                "oversized": grpc.StatusCode.RESOURCE_EXHAUSTED,
                "no twins": grpc.StatusCode.INVALID_ARGUMENT,
            }
            states = [pb.ReportDeviceStatesRequest(deviceName="thermo-1", state=s)
                      for s in ("", "on fire")]  # fmt: skip
            for request in states:
                assert _code(lambda r=request: stub.ReportDeviceStates(r, timeout=5)) == (
                    grpc.StatusCode.INVALID_ARGUMENT
                )
            register = pb.MapperRegisterRequest(mapper=pb.MapperInfo(protocol="bad/protocol"))
            assert _code(lambda: stub.MapperRegister(register, timeout=5)) == (
                grpc.StatusCode.INVALID_ARGUMENT
            )
            relative = pb.MapperRegisterRequest(
                mapper=pb.MapperInfo(protocol="virtual", address=b"relative.sock")
            )
            assert _code(lambda: stub.MapperRegister(relative, timeout=5)) == (
                grpc.StatusCode.INVALID_ARGUMENT
            )
            raw = channel.unary_unary("/v1beta1.DeviceManagerService/ReportDeviceStatus")
            for garbage in (b"\xff\xff\xff", b"\x0a\x05ab", b"\x12\x80\x80\x80\x80\x10"):
                assert _code(lambda g=garbage: raw(g, timeout=5)) in (
                    grpc.StatusCode.INTERNAL,
                    grpc.StatusCode.INVALID_ARGUMENT,
                )  # not decodable
            assert dmi_edge.twin("default/thermo-1", "temperature")["reported"]["value"] == "19.5"
            assert dmi_edge.healthy() and "Traceback" not in dmi_edge.log()
            # without data, the mapper got its model and device as calls
            wait_for(lambda: mapper.calls("RegisterDevice"), what="RegisterDevice")
            assert [m["model"]["name"] for m in mapper.calls("CreateDeviceModel")] == [
                "thermometer-model"
            ]
        finally:
            mapper.stop()


def test_killed_mapper_turns_devices_unknown_and_a_new_one_restores(
    dmi_edge: EdgeProcess, sockets: Path, tmp_path: Path
) -> None:
    first = _mapper(sockets, tmp_path, "m3", with_data=True)
    channel, stub = _stub(sockets)
    with channel:
        stub.ReportDeviceStates(
            pb.ReportDeviceStatesRequest(
                deviceName="thermo-1", deviceNamespace="default", state="online"
            ),
            timeout=5,
        )
        assert dmi_edge.get("/v1/devices/default/thermo-1").json()["state"] == "online"
        first.kill()
        wait_for(lambda: dmi_edge.get("/v1/devices/default/thermo-1").json()["state"] == "unknown",
                 timeout=20, what="the device to turn unknown")  # fmt: skip
        assert dmi_edge.get("/v1/devices/default/meter-1").json()["state"] == "unknown"
        second = _mapper(sockets, tmp_path, "m4", with_data=False)
        try:
            wait_for(lambda: second.calls("RegisterDevice"), what="the device registered again")
            stub.ReportDeviceStates(
                pb.ReportDeviceStatesRequest(
                    deviceName="thermo-1", deviceNamespace="default", state="ok"
                ),
                timeout=5,
            )
            assert dmi_edge.get("/v1/devices/default/thermo-1").json()["state"] == "ok"
        finally:
            second.stop()
    assert "Traceback" not in dmi_edge.log()


def test_registrations_survive_an_edgecore_restart(
    dmi_edge: EdgeProcess, sockets: Path, tmp_path: Path
) -> None:
    """A mapper registers once, when it starts: a restarted edgecore restores its link."""
    mapper = _mapper(sockets, tmp_path, "m5", with_data=True)
    try:
        assert (dmi_edge.state_dir / "dmi-mappers.json").stat().st_mode & 0o777 == 0o600
        dmi_edge.stop()
        dmi_edge.start()
        channel, stub = _stub(sockets)
        with channel:
            stub.ReportDeviceStatus(_report("thermo-1", "temperature", "30.5"), timeout=5)
        assert dmi_edge.twin("default/thermo-1", "temperature")["reported"]["value"] == "30.5"
        dmi_edge.put("/v1/devices/default/thermo-1/twin/setpoint/desired", json={"value": "55"})
        wait_for(lambda: _updates_to(mapper, "55"), what="UpdateDevice after the restart")
        assert not mapper.calls("RegisterDevice")  # it kept its devices: none sent again
    finally:
        mapper.stop()


def _front(edge: EdgeProcess) -> psutil.Process | None:
    """edgecore's DMI worker process, if it runs one."""
    assert edge.process is not None
    children = psutil.Process(edge.process.pid).children()
    return next((c for c in children if "edgecore.dmi.front" in c.cmdline()), None)


def test_a_killed_dmi_worker_is_restarted_and_ends_with_edgecore(
    tmp_path: Path, sockets: Path
) -> None:
    flags = ["--dmi-socket", str(sockets / "dmi.sock"), "--dmi-worker"]
    edge = EdgeProcess(tmp_path / "state", node="edge-node-1", devices=[DMI_DEVICES], extra=flags)
    with running(edge):
        mapper = _mapper(sockets, tmp_path, "m9", with_data=True)
        try:
            first = _front(edge)
            assert first is not None
            first.kill()
            second = wait_for(lambda: (f := _front(edge)) and f.pid != first.pid and f,
                              timeout=20, what="a new DMI worker")  # fmt: skip
            channel, stub = _stub(sockets)
            with channel:
                stub.ReportDeviceStatus(_report("thermo-1", "temperature", "19.5"), timeout=10,
                                        wait_for_ready=True)  # fmt: skip
            assert edge.twin("default/thermo-1", "temperature")["reported"]["value"] == "19.5"
            assert "DMI front exited, restarting" in edge.log()
        finally:
            mapper.stop()
    assert not second.is_running() or second.status() == psutil.STATUS_ZOMBIE
