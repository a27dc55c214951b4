"""Bluetooth LE mapper: bleak driver, bumble backend for virtual controllers, GATT codec."""

from __future__ import annotations

from mappers.driver import DriverFactory
from mappers.protocol import Protocol


def _drivers() -> DriverFactory:
    from mappers.bluetooth.driver import BluetoothDriver

    return BluetoothDriver


PROTOCOL = Protocol(
    "bluetooth", "BLE thermostat peripheral (bumble; HCI over TCP for the central)", _drivers,
    19002, "127.0.0.1:{}",
)  # fmt: skip
