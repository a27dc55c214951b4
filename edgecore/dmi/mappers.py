"""The DMI mappers registered on this node: one link per protocol, each calling the mapper's own
DeviceMapperService and watching that it stays there.

A link is level-triggered: it keeps what it has told its mapper (each device and model as sent)
and, when woken, makes the mapper's set match the node's devices of its protocol (Register,
Update, Remove; models created, updated and removed around them). Deltas the twin service
emits wake it for their device: a changed desired value goes out as UpdateDevice (how KubeEdge's
mapper framework takes set-points), and a retry of an unreached one goes out again. Idle, a link
costs nothing: it waits on an event and on the channel's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import grpc

from devicetwin.events import Outbound
from devicetwin.model import Device, DeviceId
from devicetwin.service import TwinService
from devicetwin.topics import membership_updated_topic, parse_delta_topic
from edgecore.dmi.convert import device_message, model_message
from kedge.backoff import Backoff
from kedge.dmi import pb, services
from kedge.process import write_private

log = logging.getLogger("kedge.dmi")
CALL_TIMEOUT = 10.0  # seconds, as KubeEdge's edgecore allows a mapper
REACH_GRACE = 30.0  # a mapper registers before it serves: time it gets to start serving
State = grpc.ChannelConnectivity


@dataclass(frozen=True, slots=True)
class MapperInfo:
    name: str
    protocol: str
    address: str  # the mapper's Unix socket
    version: str = ""


def blob(message: Any) -> bytes:
    return message.SerializeToString(deterministic=True)  # type: ignore[no-any-return]


class MapperLink:
    """One registered mapper: what it has been told, and the calls that tell it more."""

    def __init__(self, info: MapperInfo, service: TwinService) -> None:
        self.info, self.service = info, service
        self.channel = grpc.aio.insecure_channel(f"unix:{info.address}")
        self.stub = services.DeviceMapperServiceStub(self.channel)
        self.sent: dict[DeviceId, bytes] = {}
        self.models: dict[tuple[str, str], bytes] = {}
        self.full, self.dirty, self.again = True, set[DeviceId](), set[DeviceId]()
        self.wake = asyncio.Event()
        self.backoff = Backoff(1.0, 30.0)
        self.facts = {"node": service.node, "mapper": info.name, "protocol": info.protocol}

    def mine(self, device: Device | None) -> bool:
        return device is not None and device.protocol == self.info.protocol

    def assume(self, devices: Iterable[Device]) -> tuple[list[Any], list[Any]]:
        """The mapper has these (its MapperRegister answer, or kept while edgecore was away):
        their Device and DeviceModel messages, built once for both uses."""
        messages, models = [], {}
        for device in devices:
            message, model = device_message(device), model_message(device)
            self.sent[device.id] = blob(message)
            self.models[(model.namespace, model.name)] = blob(model)
            messages.append(message)
            models[(model.namespace, model.name)] = model
        return messages, list(models.values())

    def touch(self, device_id: DeviceId, again: bool) -> None:
        """`device_id` may have changed; `again`: send it even if unchanged (a delta's retry)."""
        (self.again if again else self.dirty).add(device_id)
        self.wake.set()

    def touch_all(self) -> None:
        self.full = True
        self.wake.set()

    async def run(self) -> None:
        """Serve the mapper until it is gone (then return)."""
        syncing = asyncio.create_task(self._sync_forever(), name=f"dmi {self.info.protocol}")
        try:
            await self._until_gone()
        finally:
            syncing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await syncing
            await self.channel.close()

    async def _until_gone(self) -> None:
        """Never reachable within the grace period, or its connection lost for good."""
        try:
            await asyncio.wait_for(self.channel.channel_ready(), REACH_GRACE)
        except TimeoutError:
            log.warning("DMI mapper never reachable", extra={**self.facts,
                        "address": self.info.address})  # fmt: skip
            return
        state = State.READY
        while state not in (State.TRANSIENT_FAILURE, State.SHUTDOWN):
            await self.channel.wait_for_state_change(state)
            state = self.channel.get_state(try_to_connect=True)

    async def _sync_forever(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            if await self.sync():
                self.backoff.reset()
            else:  # something failed: try again later, even if nothing else wakes us
                asyncio.get_running_loop().call_later(self.backoff.next(), self.touch_all)

    async def sync(self) -> bool:
        """Make the mapper's devices match the node's; False if a call failed."""
        devices = self.service.devices
        if self.full:
            ids = {i for i, d in devices.items() if self.mine(d)} | set(self.sent)
        else:
            ids = self.dirty | self.again
        again, full = self.again, self.full
        self.full, self.dirty, self.again = False, set(), set()
        ok = True
        for device_id in sorted(ids):
            device = devices.get(device_id)
            ok &= await self._sync_device(device_id, device if self.mine(device) else None,
                                          device_id in again)  # fmt: skip
        if full and ok:
            ok &= await self._drop_unused_models()
        return ok

    async def _sync_device(self, device_id: DeviceId, device: Device | None, again: bool) -> bool:
        namespace, _, name = device_id.partition("/")
        if device is None:
            if device_id not in self.sent:
                return True
            request = pb.RemoveDeviceRequest(deviceName=name, deviceNamespace=namespace)
            if not await self._call("RemoveDevice", request, device_id):
                return False
            del self.sent[device_id]
            return True
        if not await self._ensure_model(device):
            return False
        message = device_message(device)
        data, old = blob(message), self.sent.get(device_id)
        if old is None:
            ok = await self._call("RegisterDevice", pb.RegisterDeviceRequest(device=message),
                                  device_id)  # fmt: skip
        elif old != data or again:
            ok = await self._call("UpdateDevice", pb.UpdateDeviceRequest(device=message),
                                  device_id)  # fmt: skip
        else:
            return True
        if ok:
            self.sent[device_id] = data
        return ok

    async def _ensure_model(self, device: Device) -> bool:
        model = model_message(device)
        key, data = (model.namespace, model.name), blob(model)
        old = self.models.get(key)
        if old == data:
            return True
        if old is None:
            ok = await self._call("CreateDeviceModel", pb.CreateDeviceModelRequest(model=model),
                                  device.id)  # fmt: skip
        else:
            ok = await self._call("UpdateDeviceModel", pb.UpdateDeviceModelRequest(model=model),
                                  device.id)  # fmt: skip
        if ok:
            self.models[key] = data
        return ok

    async def _drop_unused_models(self) -> bool:
        devices = self.service.devices
        used = {(d.namespace, str(d.spec.get("model") or d.name))
                for i in self.sent if (d := devices.get(i)) is not None}  # fmt: skip
        ok = True
        for namespace, name in [k for k in self.models if k not in used]:
            request = pb.RemoveDeviceModelRequest(modelName=name, modelNamespace=namespace)
            if await self._call("RemoveDeviceModel", request, DeviceId(f"{namespace}/{name}")):
                del self.models[(namespace, name)]
            else:
                ok = False
        return ok

    async def _call(self, method: str, request: Any, subject: DeviceId) -> bool:
        try:
            await getattr(self.stub, method)(request, timeout=CALL_TIMEOUT, wait_for_ready=True)
        except grpc.aio.AioRpcError as exc:
            log.warning("DMI %s failed: %s", method, exc.details(), extra={
                **self.facts, "device": subject, "code": exc.code().name})  # fmt: skip
            return False
        log.debug("DMI %s", method, extra={**self.facts, "device": subject})
        return True

    async def get_device(self, device_id: DeviceId) -> Any:
        """The device as the mapper holds it (GetDevice); grpc.aio.AioRpcError if it cannot say."""
        namespace, _, name = device_id.partition("/")
        request = pb.GetDeviceRequest(deviceName=name, deviceNamespace=namespace)
        reply = await self.stub.GetDevice(request, timeout=CALL_TIMEOUT)
        return reply.device


Commit = Callable[[], Awaitable[None]]


class DmiMappers:
    """The links by protocol (one mapper per protocol, as in KubeEdge: a new registration
    replaces the old link). A protocol whose mapper is gone turns its devices `unknown`.

    Registrations are kept in `saved` (0600), as KubeEdge's edgecore keeps them in its
    database: a mapper registers once, when it starts, so after an edgecore restart its link is
    restored from there (and dropped if the mapper no longer answers)."""

    def __init__(self, service: TwinService, commit: Commit, saved: Path | None = None) -> None:
        self.service, self.commit, self.saved = service, commit, saved
        self.links: dict[str, MapperLink] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._membership = membership_updated_topic(service.node)

    async def restore(self) -> None:
        """Links to the mappers registered before edgecore (re)started."""
        for info in self._load():
            log.info("DMI mapper restored", extra={"node": self.service.node,
                     "mapper": info.name, "protocol": info.protocol})  # fmt: skip
            link = await self.register(info)
            # it kept its devices while edgecore was away; later changes reach it as calls
            link.assume(d for d in self.service.devices.values() if link.mine(d))

    def _load(self) -> list[MapperInfo]:
        if self.saved is None or not self.saved.exists():
            return []
        try:
            raw = json.loads(self.saved.read_text())
            return [MapperInfo(**entry) for entry in raw]
        except (OSError, ValueError, TypeError) as exc:
            log.warning("DMI registrations unreadable, ignored: %s", exc,
                        extra={"node": self.service.node})  # fmt: skip
            return []

    def _save(self) -> None:
        if self.saved is not None:
            entries = [asdict(link.info) for link in self.links.values()]
            write_private(self.saved, json.dumps(entries))

    @staticmethod
    def instance(protocol: str) -> str:
        return f"dmi.{protocol}"

    async def register(self, info: MapperInfo) -> MapperLink:
        old = self._tasks.pop(info.protocol, None)
        if old is not None:  # the mapper restarted: its old link goes quietly
            old.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await old
        link = MapperLink(info, self.service)
        self.links[info.protocol] = link
        self._save()
        self.service.mapper_seen(self.instance(info.protocol), info.protocol)
        await self.commit()
        self._tasks[info.protocol] = asyncio.create_task(self._serve(link))
        return link

    async def _serve(self, link: MapperLink) -> None:
        await link.run()
        protocol = link.info.protocol
        if self.links.get(protocol) is link:
            del self.links[protocol]
            self._tasks.pop(protocol, None)
            self._save()
            self.service.mapper_seen(self.instance(protocol), None)
            await self.commit()

    def observe(self, messages: Iterable[Outbound]) -> None:
        """The twin service's events: deltas and membership changes wake the links concerned."""
        if not self.links:
            return
        for message in messages:
            if message.topic == self._membership:
                for each in self.links.values():
                    each.touch_all()
            elif message.topic.endswith("/delta"):
                device_id = parse_delta_topic(message.topic)
                device = self.service.devices.get(device_id) if device_id else None
                if device is not None and (found := self.links.get(device.protocol)):
                    found.touch(device.id, again=True)

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        self.links.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
