"""The ZigBee devices the simulator ships, on the shared ZDO/ZCL device (`zigbee_devices`):

thermostat  Basic, Temperature Measurement 0x0402, Relative Humidity 0x0405, Thermostat 0x0201
            (occupied heating setpoint writable, system mode off/heat), driven by the shared
            thermostat model, so every protocol's simulator shows the same device.
light       Basic, On/Off 0x0006 (on, off, toggle), Level Control 0x0008 (move to level).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import zigpy.types as t
from zigpy.zcl import foundation

from simulators.thermostat import Thermostat, ThermostatError
from simulators.zigbee_devices import Attribute, DeviceRefused, SimZigbeeDevice

_STATUS = foundation.Status


class ThermostatDevice(SimZigbeeDevice):
    """The shared thermostat model behind ZCL clusters; centi-degrees as ZCL specifies."""

    def __init__(
        self,
        ieee: t.EUI64,
        nwk: int,
        state: Thermostat | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state = state or Thermostat()
        self._last = clock()
        centi = _centi
        super().__init__(
            ieee,
            nwk,
            manufacturer="kedge",
            model="KEDGE-TH-1",
            serial=self.state.serial,
            device_type=0x0301,  # thermostat
            attributes={
                (0x0402, 0x0000): Attribute(lambda: centi(self.tick().temperature)),
                (0x0402, 0x0001): Attribute(lambda: -4000),
                (0x0402, 0x0002): Attribute(lambda: 8000),
                (0x0405, 0x0000): Attribute(lambda: round(self.tick().humidity * 100)),
                (0x0201, 0x0000): Attribute(lambda: centi(self.tick().temperature)),
                (0x0201, 0x0012): Attribute(lambda: centi(self.state.setpoint), self._setpoint),
                (0x0201, 0x001C): Attribute(
                    lambda: 4 if self.state.power else 0, self._system_mode
                ),
            },
            clock=clock,
        )

    def tick(self) -> Thermostat:
        now = self.clock()
        self.state, self._last = self.state.step(now - self._last), now
        return self.state

    def _setpoint(self, value: Any) -> None:
        try:
            self.state = self.tick().with_setpoint(int(value) / 100)
        except ThermostatError as exc:
            raise DeviceRefused(_STATUS.INVALID_VALUE) from exc

    def _system_mode(self, value: Any) -> None:
        if int(value) not in (0, 4):  # off, heat: what this device supports
            raise DeviceRefused(_STATUS.INVALID_VALUE)
        self.state = self.tick().with_power(int(value) == 4)


class LightDevice(SimZigbeeDevice):
    """A dimmable light: On/Off with on, off and toggle; Level Control with move to level."""

    def __init__(
        self, ieee: t.EUI64, nwk: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.on = False
        self.level = 254
        super().__init__(
            ieee,
            nwk,
            manufacturer="kedge",
            model="KEDGE-BULB-1",
            serial="KEDGE-BULB-0001",
            device_type=0x0101,  # dimmable light
            attributes={
                (0x0006, 0x0000): Attribute(lambda: self.on),
                (0x0008, 0x0000): Attribute(lambda: self.level),
                (0x0008, 0x0011): Attribute(lambda: self.level, self._move_to_level),
            },
            commands={
                (0x0006, 0x00): lambda _args: self._switch(False),
                (0x0006, 0x01): lambda _args: self._switch(True),
                (0x0006, 0x02): lambda _args: self._switch(not self.on),
                (0x0008, 0x00): lambda args: self._move_to_level(args.level),
                (0x0008, 0x04): lambda args: self._move_to_level(args.level, switch=True),
            },
            clock=clock,
        )

    def _switch(self, on: bool) -> None:
        self.on = on

    def _move_to_level(self, level: Any, switch: bool = False) -> None:
        if not 0 <= int(level) <= 254:
            raise DeviceRefused(_STATUS.INVALID_VALUE)
        self.level = int(level)
        if switch:
            self.on = self.level > 0


def _centi(value: float) -> int:
    return round(value * 100)
