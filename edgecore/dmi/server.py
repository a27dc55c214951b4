"""edgecore's DeviceManagerService: where DMI mappers register and report, on a Unix socket.

Reports join the same twin service as MQTT's: same rules, versions, outbox and status path;
the events they cause (documents, deltas) are published to MQTT as well, so apps there see
devices whose mapper speaks DMI. A report is answered once it is in SQLite. Unlike KubeEdge's
edgecore, calls are not limited to 1 per second: a mapper of many devices reports that often.

Served by kedge.grpcwire (gRPC over HTTP/2 without grpcio's per-call cost: a report costs a
fraction of grpcio's own overhead). Every refusal is a gRPC status with a reason: an unknown
device or property NOT_FOUND, a device whose protocol has no registered mapper
FAILED_PRECONDITION, a value of the wrong type or bytes that are not the method's message
INVALID_ARGUMENT, messages over 1 MiB RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from google.protobuf.message import DecodeError

from devicetwin.events import Outbound
from devicetwin.model import Device
from devicetwin.rules import TwinError
from devicetwin.service import TwinService
from edgecore.dmi.convert import report_patches, target
from edgecore.dmi.mappers import DmiMappers, MapperInfo
from kedge.dmi import MANAGER_METHODS, pb
from kedge.grpcwire.server import GrpcServer, Handler, Later, Reply, clear_stale
from kedge.grpcwire.status import RpcError, Status
from kedge.process import SOCKET_PATH_MAX

log = logging.getLogger("kedge.dmi")
MAX_MESSAGE = 1 << 20
_PROTOCOL = re.compile(r"^[A-Za-z0-9._-]{1,64}\Z")
_CODES = {400: Status.INVALID_ARGUMENT, 404: Status.NOT_FOUND, 409: Status.ABORTED,
          500: Status.INTERNAL}  # fmt: skip
EMPTY = b""  # the encoding of every Report*Response (no fields)
Publish = Callable[[Iterable[Outbound]], None]


class SharedCommit:
    """Reports handled in one turn of the event loop share one batch, one commit and one
    publish, as an MQTT burst does: a commit per gRPC call cost more than the call itself."""

    def __init__(self, service: TwinService, publish: Publish) -> None:
        self.service, self.publish = service, publish
        self._waiting: list[Later] = []
        self._events: list[Outbound] = []

    def join(self, events: Iterable[Outbound]) -> Later:
        """The (empty) answer once what was written so far in this turn is durable; the
        report's `events` are published first."""
        if not self._waiting:
            asyncio.get_running_loop().call_soon(self._flush)
        reply = Later()
        self._waiting.append(reply)
        self._events.extend(events)
        return reply

    def _flush(self) -> None:
        waiting, self._waiting = self._waiting, []
        events, self._events = self._events, []
        committed = self.service.submit(self.service.take_batch())
        committed.add_done_callback(lambda done: self._settle(waiting, events, done))

    def _settle(self, waiting: list[Later], events: list[Outbound],
                done: asyncio.Future[None]) -> None:  # fmt: skip
        if done.exception() is not None:  # the service reloaded from disk; mappers retry
            failed = RpcError(Status.UNAVAILABLE, "twin store write failed")
            for reply in waiting:
                reply.settle(failed)
            return
        try:
            self.publish(events)
        finally:  # the reports are stored: they are answered whatever publishing did
            for reply in waiting:
                reply.settle(EMPTY)


class DeviceManager:
    def __init__(self, service: TwinService, mappers: DmiMappers, publish: Publish) -> None:
        self.service, self.mappers = service, mappers
        self.shared = SharedCommit(service, publish)

    async def MapperRegister(self, request: Any) -> bytes:  # noqa: N802 (gRPC name)
        info = _mapper_info(request.mapper)
        link = await self.mappers.register(info)
        log.info("DMI mapper registered", extra={**link.facts, "address": info.address})
        if not request.withData:
            link.touch_all()  # it gets its devices as RegisterDevice calls
            return EMPTY
        devices, models = link.assume(d for d in self.service.devices.values() if link.mine(d))
        link.touch_all()  # anything changed meanwhile follows as calls
        response = pb.MapperRegisterResponse(modelList=models, deviceList=devices)
        return bytes(response.SerializeToString())

    def ReportDeviceStatus(self, request: Any) -> Reply:  # noqa: N802
        device = self._served(request.deviceName, request.deviceNamespace)
        try:
            patches = report_patches(device, request.reportedDevice)
            _, events = self.service.report(device.id, patches)
        except TwinError as exc:
            raise RpcError(_CODES.get(exc.code, Status.INTERNAL), exc.reason) from exc
        return self.shared.join(events)

    def ReportDeviceStates(self, request: Any) -> Reply:  # noqa: N802
        device = self._served(request.deviceName, request.deviceNamespace)
        if not request.state:
            raise RpcError(Status.INVALID_ARGUMENT, "state is required")
        try:
            self.service.set_state(device.id, request.state)
        except TwinError as exc:
            raise RpcError(_CODES.get(exc.code, Status.INTERNAL), exc.reason) from exc
        return self.shared.join(())

    def _served(self, name: str, namespace: str) -> Device:
        """The device a report is about: on this node, and of a protocol a DMI mapper serves."""
        try:
            device_id = target(name, namespace)
        except TwinError as exc:
            raise RpcError(Status.INVALID_ARGUMENT, exc.reason) from exc
        device = self.service.devices.get(device_id)
        if device is None:
            reason = f"device {device_id} is not bound to node {self.service.node}"
            raise RpcError(Status.NOT_FOUND, reason)
        if device.protocol not in self.mappers.links:
            reason = f"no DMI mapper registered for protocol {device.protocol!r}"
            raise RpcError(Status.FAILED_PRECONDITION, reason)
        return device


def _mapper_info(mapper: Any) -> MapperInfo:
    if not _PROTOCOL.match(mapper.protocol):
        reason = "mapper.protocol must be 1-64 letters, digits, '.', '_' or '-'"
        raise RpcError(Status.INVALID_ARGUMENT, reason)
    try:
        address = mapper.address.decode()
    except UnicodeDecodeError as exc:
        raise RpcError(Status.INVALID_ARGUMENT, "mapper.address is not UTF-8") from exc
    address = address.removeprefix("unix://").removeprefix("unix:")
    problem = _socket_problem(address)
    if problem is not None:
        raise RpcError(Status.INVALID_ARGUMENT, f"mapper.address {problem}")
    name = mapper.name[:128] or mapper.protocol
    return MapperInfo(name, mapper.protocol, address, mapper.version[:64])


def _method(call: Callable[[Any], Reply], message_type: Any) -> Handler:
    """Decode the request (bytes that are not the method's message: INVALID_ARGUMENT with the
    reason), then call."""

    def handle(data: bytes) -> Reply:
        try:
            request = message_type.FromString(data)
        except DecodeError as exc:
            reason = f"not a valid {message_type.DESCRIPTOR.name}: {exc}"
            raise RpcError(Status.INVALID_ARGUMENT, reason) from exc
        return call(request)

    return handle


def methods(manager: DeviceManager) -> dict[str, Handler]:
    """DeviceManagerService's methods by path, in the .proto's order."""
    return {path: _method(getattr(manager, path.rsplit("/", 1)[1]), getattr(pb, request))
            for path, request in MANAGER_METHODS}  # fmt: skip


def _socket_problem(address: str) -> str | None:
    if not address.startswith("/") or len(address.encode()) > SOCKET_PATH_MAX:
        return f"must be an absolute socket path of at most {SOCKET_PATH_MAX} bytes"
    try:
        mode = os.stat(address).st_mode
    except OSError:
        return None  # a mapper may register before it listens
    return None if stat.S_ISSOCK(mode) else f"{address} is not a Unix socket"


async def serve(path: Path, manager: DeviceManager) -> GrpcServer:
    """Listen on `path` (a stale socket from a killed edgecore is replaced), owner-only."""
    clear_stale(path)
    server = GrpcServer(methods(manager), max_message=MAX_MESSAGE)
    await server.start(path)
    return server
