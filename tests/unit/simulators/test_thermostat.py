"""The shared thermostat model: power, drifting, limits; no clock, so exact values."""

from __future__ import annotations

import pytest

from simulators.thermostat import AMBIENT, Thermostat, ThermostatError


@pytest.mark.parametrize(
    ("start", "setpoint", "power", "seconds", "expected"),
    [
        (19.0, 21.0, True, 1.0, 19.5),
        (19.0, 21.0, True, 10.0, 21.0),  # never overshoots
        (25.0, 21.0, True, 2.0, 24.0),  # cools towards a lower setpoint
        (25.0, 21.0, False, 10.0, 24.0),  # off: drifts to ambient, slowly
        (18.05, 30.0, False, 1.0, AMBIENT),
        (19.0, 21.0, True, 0.0, 19.0),
    ],
)
def test_step_when_time_passes_moves_temperature(
    start: float, setpoint: float, power: bool, seconds: float, expected: float
) -> None:
    state = Thermostat(temperature=start, setpoint=setpoint, power=power)
    assert state.step(seconds).temperature == pytest.approx(expected)


@pytest.mark.parametrize(
    ("temperature", "humidity"),
    [(20.0, 45.0), (30.0, 30.0), (0.0, 75.0), (-20.0, 80.0), (60.0, 20.0)],
)
def test_humidity_when_temperature_changes_follows_it(temperature: float, humidity: float) -> None:
    assert Thermostat(temperature=temperature).humidity == humidity


@pytest.mark.parametrize("value", [4.9, 35.1])
def test_with_setpoint_when_out_of_range_is_refused(value: float) -> None:
    with pytest.raises(ThermostatError, match="outside 5..35"):
        Thermostat().with_setpoint(value)


def test_with_power_when_switched_off_stops_power() -> None:
    assert Thermostat(temperature=19.0).with_power(False).step(1).temperature == 18.9
