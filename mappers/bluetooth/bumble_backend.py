"""A bleak backend that drives a bumble central over an HCI transport.

The BLE mapper uses only bleak's public API (`BleakScanner`, `BleakClient`). On a machine with
BlueZ that runs on bleak's platform backend; here, where there is no Bluetooth hardware, the same
code runs with `backend=` set to the classes `bumble_backend(transport)` returns, talking HCI to a
virtual controller (e.g. `tcp-client:127.0.0.1:19002`, the port `kedge simulate bluetooth`
serves). One bumble central per transport per process, shared by scanners and clients.

Not implemented, as in bumble's own examples: pairing/bonding and MTU exchange (`mtu_size` is the
ATT default, 23).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid as uuidlib
from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError
from bumble.att import ATT_Error
from bumble.core import UUID, AdvertisingData
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.gatt import Characteristic
from bumble.hci import Address
from bumble.transport import open_transport

ATT_MTU = 23
CENTRAL_ADDRESS = "F0:F0:F0:F0:F0:F0"
_PROPERTIES = {
    Characteristic.Properties.BROADCAST: "broadcast",
    Characteristic.Properties.READ: "read",
    Characteristic.Properties.WRITE_WITHOUT_RESPONSE: "write-without-response",
    Characteristic.Properties.WRITE: "write",
    Characteristic.Properties.NOTIFY: "notify",
    Characteristic.Properties.INDICATE: "indicate",
}
_centrals: dict[str, tuple[Device, Any]] = {}  # transport -> (central, opened transport)
_lock = asyncio.Lock()


def uuid_text(value: UUID) -> str:
    """bumble keeps UUID bytes little-endian; bleak wants the usual 128-bit text."""
    return str(uuidlib.UUID(bytes=bytes(reversed(value.to_bytes(force_128=True)))))


def _alive(opened: Any) -> bool:
    return not opened.source.terminated.done()


async def central_for(transport: str) -> Device:
    """This process's bumble central on `transport`; reopened when the transport died."""
    async with _lock:
        cached = _centrals.get(transport)
        if cached is not None and _alive(cached[1]):
            return cached[0]
        if cached is not None:
            with contextlib.suppress(Exception):  # already dead; closing is best effort
                await cached[1].close()
        opened = await open_transport(transport)
        device = Device.with_hci(
            "kedge-central", Address(CENTRAL_ADDRESS), opened.source, opened.sink
        )
        await device.power_on()
        _centrals[transport] = (device, opened)
        return device


def transport_alive(transport: str) -> bool:
    cached = _centrals.get(transport)
    return cached is not None and _alive(cached[1])


async def _att(operation: Awaitable[Any]) -> Any:
    """ATT errors and lost links surface as BleakError, as bleak's own backends report them."""
    try:
        return await operation
    except ATT_Error as exc:
        raise BleakError(f"ATT error {exc.error_name}") from exc
    except asyncio.CancelledError as exc:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # our own task is being cancelled (or timed out): keep that intact
        # bumble cancels a pending request when its link drops
        raise BleakError("connection lost during the request") from exc


def _advertised(adv: Advertisement) -> tuple[str | None, list[str]]:
    name = adv.data.get(AdvertisingData.COMPLETE_LOCAL_NAME)
    uuids: list[str] = []
    for kind in (
        AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
        AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
    ):
        for value in adv.data.get(kind) or []:
            text = uuid_text(value)
            if text not in uuids:  # advertisement + scan response repeat them
                uuids.append(text)
    return (name.decode() if isinstance(name, bytes) else name), uuids


class BumbleScanner(BaseBleakScanner):
    """Scans on `transport` (set per transport by `bumble_backend`)."""

    transport = ""

    def __init__(
        self,
        detection_callback: Any,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        **_kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._central: Device | None = None

    def _on_advertisement(self, adv: Advertisement) -> None:
        name, uuids = _advertised(adv)
        if not self.is_allowed_uuid(uuids):
            return
        data = AdvertisementData(
            local_name=name,
            manufacturer_data={},
            service_data={},
            service_uuids=uuids,
            tx_power=None,
            rssi=adv.rssi,
            platform_data=(adv,),
        )
        address = adv.address.to_string(with_type_qualifier=False)
        device = self.create_or_update_device(address, address, name, adv, data)
        self.call_detection_callbacks(device, data)

    async def start(self) -> None:
        self._central = await central_for(self.transport)
        self._central.on("advertisement", self._on_advertisement)
        await self._central.start_scanning(filter_duplicates=False)

    async def stop(self) -> None:
        if self._central is not None:
            self._central.remove_listener("advertisement", self._on_advertisement)
            await self._central.stop_scanning()


class BumbleClient(BaseBleakClient):
    """A GATT client on `transport` (set per transport by `bumble_backend`)."""

    transport = ""

    def __init__(self, address_or_ble_device: BLEDevice | str, **kwargs: Any) -> None:
        super().__init__(address_or_ble_device, **kwargs)
        details = getattr(address_or_ble_device, "details", None)
        self._target = (
            details.address if isinstance(details, Advertisement) else Address(self.address)
        )
        self._connection: Connection | None = None

    @property
    def mtu_size(self) -> int:
        return ATT_MTU

    @property
    def is_connected(self) -> bool:
        return self._connection is not None and transport_alive(self.transport)

    def _lost(self, *_args: Any) -> None:
        self._connection = None
        if self._disconnected_callback is not None:
            self._disconnected_callback()

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        central = await central_for(self.transport)
        try:
            connection = await asyncio.wait_for(central.connect(self._target), self._timeout)
        except TimeoutError as exc:
            raise BleakDeviceNotFoundError(self.address, f"{self.address} not found") from exc
        connection.on("disconnection", self._lost)
        peer = Peer(connection)
        await peer.discover_services()
        await peer.discover_characteristics()
        self.services = self._collection(peer)
        self._connection = connection

    def _collection(self, peer: Peer) -> BleakGATTServiceCollection:
        collection = BleakGATTServiceCollection()
        for service in peer.services:
            bleak_service = BleakGATTService(service, service.handle, uuid_text(service.uuid))
            collection.add_service(bleak_service)
            for char in service.characteristics:
                props = [n for flag, n in _PROPERTIES.items() if char.properties & flag]
                collection.add_characteristic(
                    BleakGATTCharacteristic(
                        char,
                        char.handle,
                        uuid_text(char.uuid),
                        props,  # type: ignore[arg-type]
                        lambda: ATT_MTU - 3,
                        bleak_service,
                    )
                )
        return collection

    async def disconnect(self) -> None:
        if self._connection is not None:
            await self._connection.disconnect()
            self._connection = None

    def _require(self) -> None:
        if self._connection is None:
            raise BleakError("Not connected")

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        raise BleakError("pairing is not supported by the bumble backend")

    async def unpair(self) -> None:
        raise BleakError("pairing is not supported by the bumble backend")

    async def read_gatt_char(
        self,
        characteristic: BleakGATTCharacteristic,
        *,
        use_cached: bool = False,
        **kwargs: Any,
    ) -> bytearray:
        self._require()
        return bytearray(await _att(characteristic.obj.read_value()))

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: Any, response: bool
    ) -> None:
        self._require()
        await _att(characteristic.obj.write_value(bytes(data), with_response=response))

    async def start_notify(
        self,
        characteristic: BleakGATTCharacteristic,
        callback: Callable[[bytearray], None],
        **kwargs: Any,
    ) -> None:
        self._require()
        await _att(characteristic.obj.subscribe(lambda value: callback(bytearray(value))))

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        self._require()
        await _att(characteristic.obj.unsubscribe())

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        self._require()
        return bytearray(await _att(descriptor.obj.read_value()))

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: Any) -> None:
        self._require()
        await _att(descriptor.obj.write_value(bytes(data)))


@cache
def bumble_backend(transport: str) -> tuple[type[BaseBleakScanner], type[BaseBleakClient]]:
    """Scanner and client classes bound to one HCI transport, for bleak's `backend=`."""
    scanner = type("BumbleScanner", (BumbleScanner,), {"transport": transport})
    client = type("BumbleClient", (BumbleClient,), {"transport": transport})
    return scanner, client


async def close_centrals() -> None:
    """Close every central and transport this process opened (at shutdown)."""
    async with _lock:
        for _device, opened in _centrals.values():
            with contextlib.suppress(Exception):  # a dead transport may fail to close
                await opened.close()
        _centrals.clear()
