"""`GET /v1/devices/{ns}/{name}/mapper`: the device as its DMI mapper holds it (DMI's GetDevice),
to see what a mapper was told when a device does not behave."""

from __future__ import annotations

from typing import Any

import grpc
from fastapi import APIRouter
from google.protobuf.json_format import MessageToDict

from devicetwin.model import device_id
from devicetwin.rules import TwinError
from edgecore.dmi.mappers import DmiMappers


def mapper_view(dmi: DmiMappers) -> APIRouter:
    router = APIRouter(prefix="/v1/devices")

    @router.get("/{namespace}/{name}/mapper")
    async def get_mapper_view(namespace: str, name: str) -> dict[str, Any]:
        device = dmi.service.devices.get(device_id(namespace, name))
        if device is None:
            raise TwinError(404, f"device {namespace}/{name} is not bound to this node")
        link = dmi.links.get(device.protocol)
        if link is None:
            raise TwinError(404, f"no DMI mapper serves protocol {device.protocol!r} here")
        try:
            held = await link.get_device(device.id)
        except grpc.aio.AioRpcError as exc:
            code = 404 if exc.code() == grpc.StatusCode.NOT_FOUND else 502
            raise TwinError(code, f"mapper {link.info.name}: {exc.details()}") from exc
        return {"mapper": link.info.name, "protocol": device.protocol,
                "device": MessageToDict(held)}  # fmt: skip

    return router
