"""Modbus mapper: pymodbus driver and the pure register codec."""

from __future__ import annotations

from mappers.driver import DriverFactory
from mappers.protocol import Protocol


def _drivers() -> DriverFactory:
    from mappers.modbus.driver import EndpointPool, ModbusDriver

    pool = EndpointPool()  # devices behind one gateway share a connection
    return lambda config: ModbusDriver(config, pool)


PROTOCOL = Protocol("modbus", "Modbus TCP thermostat (pymodbus)", _drivers, 5020, "port: {}")
