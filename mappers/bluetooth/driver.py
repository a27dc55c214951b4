"""Bluetooth LE driver on bleak's public API (BleakScanner, BleakClient).

Protocol configData: `macAddress` (KubeEdge's key) or `name`, `scanTimeout` (s, default 5),
`timeout` (connect, s, default 10) and kedge's `hci`: an HCI transport for the bumble backend
(e.g. `tcp-client:127.0.0.1:19002`); without it bleak uses the platform backend (BlueZ).
Visitor configData: see `mappers.bluetooth.codec` (`characteristicUUID`, `format`, `scale`,
`offset`, `byteOffset`, `dataConverter`, `dataWrite`); `subscribe: true` uses notifications.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

from bleak import BleakClient, BleakScanner
from bleak.backends.client import BaseBleakClient
from bleak.backends.scanner import BaseBleakScanner
from bleak.exc import BleakCharacteristicNotFoundError, BleakError

from devicetwin.memberspec import PropertyConfig
from mappers.bluetooth.bumble_backend import bumble_backend
from mappers.bluetooth.codec import GattCodecError, GattSpec, decode, encode, gatt_spec
from mappers.driver import (
    DeviceRejected,
    DeviceUnreachable,
    PerProperty,
    ValueCallback,
    VisitorError,
)


def _seconds(config: Mapping[str, Any], key: str, default: float) -> float:
    try:
        value = float(config.get(key, default))
    except (TypeError, ValueError) as exc:
        raise VisitorError(f"{key}: {exc}") from exc
    if value <= 0:
        raise VisitorError(f"{key}: must be positive")
    return value


def _gatt_spec(prop: PropertyConfig) -> GattSpec:
    try:
        return gatt_spec(prop.visitor, prop.type)
    except GattCodecError as exc:
        raise VisitorError(f"{prop.name}: {exc}") from exc


class BluetoothDriver:
    """One BLE connection per device (BLE links are per peripheral), serialised by a lock."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.address = config.get("macAddress")
        self.name = config.get("name")
        if not self.address and not self.name:
            raise VisitorError("protocol configData needs macAddress or name")
        self.scan_timeout = _seconds(config, "scanTimeout", 5.0)
        self.timeout = _seconds(config, "timeout", 10.0)
        hci = config.get("hci")
        backends: tuple[type[BaseBleakScanner] | None, type[BaseBleakClient] | None] = (
            bumble_backend(str(hci)) if hci else (None, None)
        )
        self._scanner, self._client_backend = backends
        self._client: BleakClient | None = None
        self._lock = asyncio.Lock()
        self._spec = PerProperty(_gatt_spec)

    def _scan_backend(self) -> dict[str, Any]:
        """`backend=` only when set: bleak then picks its platform backend itself."""
        return {} if self._scanner is None else {"backend": self._scanner}

    async def _connected(self) -> BleakClient:
        if self._client is not None and self._client.is_connected:
            return self._client
        target = f"address {self.address}" if self.address else f"name {self.name!r}"
        try:
            if self.address:
                device = await BleakScanner.find_device_by_address(
                    str(self.address), timeout=self.scan_timeout, **self._scan_backend()
                )
            else:
                device = await BleakScanner.find_device_by_name(
                    str(self.name), timeout=self.scan_timeout, **self._scan_backend()
                )
        except (BleakError, OSError, TimeoutError) as exc:  # e.g. the HCI link is down
            raise DeviceUnreachable(f"cannot scan for {target}: {exc}") from exc
        if device is None:
            raise DeviceUnreachable(f"no device with {target} within {self.scan_timeout:g}s")
        client = BleakClient(device, backend=self._client_backend, timeout=self.timeout)
        try:
            await client.connect()
        except (BleakError, TimeoutError, OSError) as exc:
            raise DeviceUnreachable(f"cannot connect to {target}: {exc}") from exc
        self._client = client
        return client

    async def _call(self, prop: PropertyConfig, operation: str, *args: Any) -> Any:
        spec = self._spec(prop)
        async with self._lock:
            client = await self._connected()
            try:
                async with asyncio.timeout(self.timeout):  # a dead link may never answer
                    return await getattr(client, operation)(spec.uuid, *args)
            except BleakCharacteristicNotFoundError as exc:
                raise VisitorError(
                    f"{prop.name}: device has no characteristic {spec.uuid}"
                ) from exc
            except (BleakError, OSError, EOFError) as exc:
                if client.is_connected:
                    raise DeviceRejected(f"{prop.name}: {exc}") from exc
                self._client = None
                raise DeviceUnreachable(f"{prop.name}: {exc}") from exc
            except TimeoutError as exc:  # no answer in time: treat the link as gone
                self._client = None
                raise DeviceUnreachable(f"{prop.name}: no answer in {self.timeout:g}s") from exc

    async def read(self, prop: PropertyConfig) -> str:
        data = await self._call(prop, "read_gatt_char")
        try:
            return decode(self._spec(prop), bytes(data))
        except GattCodecError as exc:
            raise DeviceRejected(f"{prop.name}: {exc}") from exc

    async def write(self, prop: PropertyConfig, value: str) -> None:
        try:
            data = encode(self._spec(prop), value)
        except GattCodecError as exc:
            raise VisitorError(f"{prop.name}: {exc}") from exc
        await self._call(prop, "write_gatt_char", data, True)

    async def subscribe(self, props: list[PropertyConfig], on_value: ValueCallback) -> None:
        for prop in props:
            spec = self._spec(prop)

            def deliver(
                _char: Any, data: bytearray, prop: PropertyConfig = prop, spec: GattSpec = spec
            ) -> None:
                # a malformed notification is dropped; the next liveness poll corrects the twin
                with contextlib.suppress(GattCodecError):
                    on_value(prop.name, decode(spec, bytes(data)))

            await self._call(prop, "start_notify", deliver)

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and client.is_connected:
            await client.disconnect()
