"""Mapper presence: retained "alive" messages and last wills tell the edge which mappers run."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from devicetwin.model import Device, DeviceId
from devicetwin.presence import MapperPresence, parse_presence
from devicetwin.rules import TwinError
from devicetwin.service import TwinService
from devicetwin.store import TwinStore

NOW = 1_765_058_400_000


def test_a_protocol_is_lost_only_with_its_last_instance() -> None:
    presence = MapperPresence()
    assert presence.update("modbus-a", "modbus", NOW) is None
    assert presence.update("modbus-b", "modbus", NOW) is None  # a restart overlapping the old
    assert presence.update("modbus-a", None, NOW + 1) is None  # the old one's will: b serves
    assert presence.alive() == {"modbus"}
    assert presence.update("modbus-b", None, NOW + 2) == "modbus"
    assert presence.alive() == set() and presence.lost == {"modbus": NOW + 2}
    assert presence.update("modbus-c", "modbus", NOW + 3) is None
    assert presence.lost == {} and presence.alive() == {"modbus"}
    assert presence.update("never-seen", None, NOW) is None  # a stale will: nothing lost


@pytest.mark.parametrize(
    ("protocol", "instance"),
    [("modbus", "../etc"), ("modbus", "x" * 129), ("", "ok"), ("has space", "ok"), ("a+b", "ok")],
)
def test_malformed_presence_is_refused(protocol: str, instance: str) -> None:
    with pytest.raises(TwinError):
        parse_presence(protocol, instance, True)


@pytest.fixture
def service(tmp_path: Path) -> TwinService:
    store = TwinStore(tmp_path / "twins.db")
    devices = {
        DeviceId(f"default/{name}"): Device(
            id=DeviceId(f"default/{name}"),
            name=name,
            namespace="default",
            protocol=protocol,
            state="online",
        )  # fmt: skip
        for name, protocol in (("m1", "modbus"), ("b1", "bluetooth"))
    }
    svc = TwinService("n1", store, clock=lambda: NOW)
    svc.devices = devices
    return svc


async def test_a_dead_mappers_devices_turn_unknown_and_the_cloud_hears(
    service: TwinService,
) -> None:
    changed: list[str] = []
    told: list[int] = []
    service.on_status = lambda devices: changed.extend(d.id for d in devices)
    service.on_mappers = lambda: told.append(1)
    topic = "$hw/events/node/n1/mappers/modbus/a"
    assert service.handle(topic, orjson.dumps({"since": NOW})).code == 200
    assert service.mappers == {"modbus"} and told == [1]
    assert service.handle(topic, b"").code == 200  # the will: an empty retained message
    assert service.devices[DeviceId("default/m1")].state == "unknown"
    assert service.devices[DeviceId("default/b1")].state == "online"  # another protocol
    assert service.presence.lost == {"modbus": NOW}
    assert changed == []  # told once it is stored
    await service.commit(service.take_batch())
    assert changed == ["default/m1"]
    await service.close()


def test_presence_for_another_node_or_garbage_changes_nothing(service: TwinService) -> None:
    assert service.handle("$hw/events/node/n2/mappers/modbus/x", b"").action == "ignored"
    assert service.handle("$hw/events/node/n1/mappers/modbus/x", b"\xff\xfe").code == 400
    assert service.handle("$hw/events/node/n1/mappers/x", b"{}").code == 400  # no instance
    assert service.mappers == set()
    assert all(d.state == "online" for d in service.devices.values())
