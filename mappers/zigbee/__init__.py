"""ZigBee mapper: zigpy over a configured radio (XBee, EZSP, ZNP, deCONZ, ZiGate)."""

from __future__ import annotations

from mappers.driver import DriverFactory
from mappers.protocol import Protocol


def _drivers() -> DriverFactory:
    from mappers.zigbee.driver import ZigbeeDriver
    from mappers.zigbee.network import NetworkPool

    pool = NetworkPool()  # devices on one radio share its network
    return lambda config: ZigbeeDriver(config, pool)


PROTOCOL = Protocol(
    "zigbee", "ZigBee thermostat and light behind an emulated XBee radio (TCP)", _drivers,
    19003, "127.0.0.1:{}",
)  # fmt: skip
