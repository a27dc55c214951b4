"""The driver conformance suite's cases: one module per protocol, named after it, with
`case(tmp)` yielding a `Case` (its driver against its simulator). `test_driver_conformance`
runs every protocol in `mappers.registry`; a new protocol adds its module here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from mappers.driver import Driver, PropertyConfig
from simulators.thermostat import Thermostat

STATE = Thermostat(temperature=19.5, setpoint=21.0)


@dataclass
class Case:
    driver: Driver
    temperature: PropertyConfig
    setpoint: PropertyConfig
    serial: PropertyConfig
    setpoint_of: Callable[[], Awaitable[float]]  # what the device now holds
    outage: Callable[[], Awaitable[None]]
    recover: Callable[[], Awaitable[None]]
    fail: Callable[[bool], Awaitable[None]]  # the device answers with an error while True
