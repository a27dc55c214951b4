"""Protocol name -> driver factory. Adding a protocol is one entry here plus its module."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mappers.driver import Driver
from mappers.runtime import DriverFactory


def _modbus() -> DriverFactory:
    from mappers.modbus.driver import EndpointPool, ModbusDriver

    pool = EndpointPool()  # devices behind one gateway share a connection

    def build(config: Mapping[str, Any]) -> Driver:
        return ModbusDriver(config, pool)

    return build


def _opcua() -> DriverFactory:
    from mappers.opcua.driver import OpcUaDriver, SessionPool

    pool = SessionPool()  # devices on one server share a session

    def build(config: Mapping[str, Any]) -> Driver:
        return OpcUaDriver(config, pool)

    return build


def _bluetooth() -> DriverFactory:
    from mappers.bluetooth.driver import BluetoothDriver

    def build(config: Mapping[str, Any]) -> Driver:
        return BluetoothDriver(config)

    return build


def _zigbee() -> DriverFactory:
    from mappers.zigbee.driver import ZigbeeDriver
    from mappers.zigbee.network import NetworkPool

    pool = NetworkPool()  # devices on one radio share its network

    def build(config: Mapping[str, Any]) -> Driver:
        return ZigbeeDriver(config, pool)

    return build


PROTOCOLS: dict[str, Callable[[], DriverFactory]] = {
    "modbus": _modbus,
    "opcua": _opcua,
    "bluetooth": _bluetooth,
    "zigbee": _zigbee,
}


def driver_factory(protocol: str) -> DriverFactory:
    if protocol not in PROTOCOLS:
        raise ValueError(f"no mapper for protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[protocol]()
