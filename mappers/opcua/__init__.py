"""OPC UA mapper: asyncua driver."""

from __future__ import annotations

from mappers.driver import DriverFactory
from mappers.protocol import Protocol


def _drivers() -> DriverFactory:
    from mappers.opcua.driver import OpcUaDriver, SessionPool

    pool = SessionPool()  # devices on one server share a session
    return lambda config: OpcUaDriver(config, pool)


PROTOCOL = Protocol("opcua", "OPC UA thermostat (asyncua)", _drivers, 4840, "127.0.0.1:{}")
