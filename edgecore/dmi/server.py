"""edgecore's DeviceManagerService: where DMI mappers register and report, on a Unix socket.

Reports join the same twin service as MQTT's: same rules, versions, outbox and status path;
the events they cause (documents, deltas) are published to MQTT as well, so apps there see
devices whose mapper speaks DMI. A report is answered once it is in SQLite. Unlike KubeEdge's
edgecore, calls are not limited to 1 per second: a mapper of many devices reports that often.

Every refusal is a gRPC status with a reason: an unknown device or property NOT_FOUND, a device
whose protocol has no registered mapper FAILED_PRECONDITION, a value of the wrong type
INVALID_ARGUMENT; messages over 1 MiB are refused by gRPC itself (RESOURCE_EXHAUSTED).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import stat
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

import grpc
from google.protobuf.message import DecodeError

from devicetwin.events import Outbound
from devicetwin.model import Device
from devicetwin.rules import TwinError
from devicetwin.service import TwinService
from edgecore.dmi.convert import report_patches, target
from edgecore.dmi.mappers import DmiMappers, MapperInfo
from kedge.dmi import pb
from kedge.process import SOCKET_PATH_MAX

log = logging.getLogger("kedge.dmi")
MAX_MESSAGE = 1 << 20
_PROTOCOL = re.compile(r"^[A-Za-z0-9._-]{1,64}\Z")
_CODES = {400: grpc.StatusCode.INVALID_ARGUMENT, 404: grpc.StatusCode.NOT_FOUND,
          409: grpc.StatusCode.ABORTED, 500: grpc.StatusCode.INTERNAL}  # fmt: skip
Publish = Callable[[Iterable[Outbound]], None]


class SharedCommit:
    """Reports handled in one turn of the event loop share one batch and one commit, as an
    MQTT burst does: a commit per gRPC call cost more than the call itself."""

    def __init__(self, service: TwinService) -> None:
        self.service = service
        self._pending: asyncio.Future[None] | None = None

    def join(self) -> asyncio.Future[None]:
        """Completes once what was written so far in this turn is durable."""
        if self._pending is None:
            loop = asyncio.get_running_loop()
            self._pending = loop.create_future()
            loop.call_soon(self._flush)
        return self._pending

    def _flush(self) -> None:
        shared, self._pending = self._pending, None
        assert shared is not None
        committed = self.service.submit(self.service.take_batch())
        committed.add_done_callback(lambda done: _settle(shared, done))


def _settle(shared: asyncio.Future[None], done: asyncio.Future[None]) -> None:
    if shared.done():
        return
    if done.exception() is not None:
        shared.set_exception(done.exception())  # type: ignore[arg-type]
    else:
        shared.set_result(None)


class DeviceManager:
    def __init__(self, service: TwinService, mappers: DmiMappers, publish: Publish) -> None:
        self.service, self.mappers, self.publish = service, mappers, publish
        self.shared = SharedCommit(service)

    async def MapperRegister(self, request: Any, context: Any) -> Any:  # noqa: N802 (gRPC name)
        info = await self._mapper_info(request.mapper, context)
        link = await self.mappers.register(info)
        log.info("DMI mapper registered", extra={**link.facts, "address": info.address})
        if not request.withData:
            link.touch_all()  # it gets its devices as RegisterDevice calls
            return pb.MapperRegisterResponse()
        devices, models = link.assume(d for d in self.service.devices.values() if link.mine(d))
        link.touch_all()  # anything changed meanwhile follows as calls
        return pb.MapperRegisterResponse(modelList=models, deviceList=devices)

    async def _mapper_info(self, mapper: Any, context: Any) -> MapperInfo:
        if not _PROTOCOL.match(mapper.protocol):
            reason = "mapper.protocol must be 1-64 letters, digits, '.', '_' or '-'"
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, reason)
        try:
            address = mapper.address.decode()
        except UnicodeDecodeError:
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "mapper.address is not UTF-8")
        address = address.removeprefix("unix://").removeprefix("unix:")
        problem = _socket_problem(address)
        if problem is not None:
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"mapper.address {problem}")
        name = mapper.name[:128] or mapper.protocol
        return MapperInfo(name, mapper.protocol, address, mapper.version[:64])

    async def ReportDeviceStatus(self, request: Any, context: Any) -> Any:  # noqa: N802
        device = await self._served(request.deviceName, request.deviceNamespace, context)
        try:
            patches = report_patches(device, request.reportedDevice)
            _, events = self.service.report(device.id, patches)
        except TwinError as exc:
            await _abort(context, _CODES.get(exc.code, grpc.StatusCode.INTERNAL), exc.reason)
        await self._commit(context)
        self.publish(events)
        return pb.ReportDeviceStatusResponse()

    async def ReportDeviceStates(self, request: Any, context: Any) -> Any:  # noqa: N802
        device = await self._served(request.deviceName, request.deviceNamespace, context)
        if not request.state:
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "state is required")
        try:
            self.service.set_state(device.id, request.state)
        except TwinError as exc:
            await _abort(context, _CODES.get(exc.code, grpc.StatusCode.INTERNAL), exc.reason)
        await self._commit(context)
        return pb.ReportDeviceStatesResponse()

    async def _served(self, name: str, namespace: str, context: Any) -> Device:
        """The device a report is about: on this node, and of a protocol a DMI mapper serves."""
        try:
            device_id = target(name, namespace)
        except TwinError as exc:
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, exc.reason)
        device = self.service.devices.get(device_id)
        if device is None:
            reason = f"device {device_id} is not bound to node {self.service.node}"
            await _abort(context, grpc.StatusCode.NOT_FOUND, reason)
        if device.protocol not in self.mappers.links:
            await _abort(context, grpc.StatusCode.FAILED_PRECONDITION,
                         f"no DMI mapper registered for protocol {device.protocol!r}")  # fmt: skip
        return device

    async def _commit(self, context: Any) -> None:
        try:
            await asyncio.shield(self.shared.join())  # one caller leaving cancels no other's
        except Exception:  # noqa: BLE001 - the service reloaded from disk; the mapper retries
            await _abort(context, grpc.StatusCode.UNAVAILABLE, "twin store write failed")


class Malformed(NamedTuple):
    """A request whose bytes are not the message its method takes."""

    reason: str


def _decoder(message_type: Any) -> Callable[[bytes], Any]:
    def decode(data: bytes) -> Any:
        try:
            return message_type.FromString(data)
        except DecodeError as exc:
            return Malformed(f"not a valid {message_type.DESCRIPTOR.name}: {exc}")

    return decode


def _guarded(method: Callable[[Any, Any], Awaitable[Any]]) -> Callable[[Any, Any], Awaitable[Any]]:
    async def call(request: Any, context: Any) -> Any:
        if isinstance(request, Malformed):
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, request.reason)
        return await method(request, context)

    return call


def handlers(manager: DeviceManager) -> grpc.GenericRpcHandler:
    """DeviceManagerService's methods, from the .proto's descriptor. Undecodable bytes get
    INVALID_ARGUMENT with a reason (gRPC's own decoding would answer UNKNOWN and log a
    traceback per message)."""
    service = pb.DESCRIPTOR.services_by_name["DeviceManagerService"]
    methods = {
        m.name: grpc.unary_unary_rpc_method_handler(
            _guarded(getattr(manager, m.name)),
            request_deserializer=_decoder(getattr(pb, m.input_type.name)),
            response_serializer=getattr(pb, m.output_type.name).SerializeToString,
        )
        for m in service.methods
    }
    return grpc.method_handlers_generic_handler(service.full_name, methods)


async def _abort(context: Any, code: grpc.StatusCode, reason: str) -> NoReturn:
    await context.abort(code, reason)
    raise AssertionError("abort returns only by raising")  # pragma: no cover


def _socket_problem(address: str) -> str | None:
    if not address.startswith("/") or len(address.encode()) > SOCKET_PATH_MAX:
        return f"must be an absolute socket path of at most {SOCKET_PATH_MAX} bytes"
    try:
        mode = os.stat(address).st_mode
    except OSError:
        return None  # a mapper may register before it listens
    return None if stat.S_ISSOCK(mode) else f"{address} is not a Unix socket"


def _clear_stale(path: Path) -> None:
    if path.is_socket():  # left by a killed edgecore
        path.unlink()


async def serve(path: Path, manager: DeviceManager) -> grpc.aio.Server:
    """Listen on `path` (a stale socket from a killed edgecore is replaced), owner-only."""
    _clear_stale(path)
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", MAX_MESSAGE),
                                      ("grpc.so_reuseport", 0)])  # fmt: skip
    server.add_generic_rpc_handlers((handlers(manager),))
    old_umask = os.umask(0o177)
    try:
        server.add_insecure_port(f"unix:{path}")
        await server.start()
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)
    return server
