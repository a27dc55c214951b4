"""The protocol plug-ins, one line each; everything that names protocols reads this list."""

from __future__ import annotations

from mappers import bluetooth, modbus, opcua, zigbee
from mappers.driver import DriverFactory
from mappers.protocol import Protocol

PLUGINS: tuple[Protocol, ...] = (
    modbus.PROTOCOL,
    opcua.PROTOCOL,
    bluetooth.PROTOCOL,
    zigbee.PROTOCOL,
)
PROTOCOLS: dict[str, Protocol] = {p.name: p for p in PLUGINS}


def driver_factory(protocol: str) -> DriverFactory:
    """The driver factory of one mapper process (its library stack imported now)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"no mapper for protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[protocol].drivers()
