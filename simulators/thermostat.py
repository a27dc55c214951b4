"""The simulated thermostat every protocol simulator exposes. Pure: state in, state out.

While power is on the temperature moves towards the setpoint at HEAT_RATE degC/s; while off it
drifts back to AMBIENT at DRIFT_RATE. Humidity is read-only and follows the temperature (warmer
air, lower relative humidity). The model knows nothing about registers or nodes, so the Modbus
and OPC UA simulators show the same device and a test can predict what a mapper must read.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

AMBIENT = 18.0
HEAT_RATE = 0.5  # degC per second towards the setpoint while powered
DRIFT_RATE = 0.1  # degC per second towards ambient while off
SETPOINT_RANGE = (5.0, 35.0)


class ThermostatError(ValueError):
    """A write the device itself refuses (Modbus: illegal data value)."""


def _towards(value: float, target: float, step: float) -> float:
    if abs(target - value) <= step:
        return target
    return value + step if target > value else value - step


@dataclass(frozen=True, slots=True)
class Thermostat:
    temperature: float = 19.0
    setpoint: float = 21.0
    power: bool = True
    serial: str = "KEDGE-TH-0001"

    @property
    def humidity(self) -> float:
        return round(min(80.0, max(20.0, 45.0 - (self.temperature - 20.0) * 1.5)), 1)

    def step(self, seconds: float) -> Thermostat:
        """The state `seconds` later."""
        if seconds <= 0:
            return self
        if self.power:
            temperature = _towards(self.temperature, self.setpoint, HEAT_RATE * seconds)
        else:
            temperature = _towards(self.temperature, AMBIENT, DRIFT_RATE * seconds)
        return replace(self, temperature=round(temperature, 3))

    def with_setpoint(self, value: float) -> Thermostat:
        low, high = SETPOINT_RANGE
        if not low <= value <= high:
            raise ThermostatError(f"setpoint {value} is outside {low:g}..{high:g}")
        return replace(self, setpoint=value)

    def with_power(self, on: bool) -> Thermostat:
        return replace(self, power=on)
