"""What a protocol driver is, and the errors it raises. A new protocol is one module.

The runtime (`mappers.runtime`) owns scheduling, MQTT and device state; a driver only talks to
its device. Errors decide what the runtime does:

    DeviceUnreachable  connection or timeout: counts towards `offline`, reconnect with backoff
    DeviceRejected     the device answered with an error: it is online, this request failed
    VisitorError       the manifest cannot work (bad register, bad value for the type): permanent
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from kedge.errors import KedgeError, PermanentError, TemporaryError

T = TypeVar("T")


class DeviceError(KedgeError):
    """Base of everything a driver raises."""


class DeviceUnreachable(DeviceError, TemporaryError):
    pass


class DeviceRejected(DeviceError, PermanentError):
    pass


class VisitorError(DeviceError, PermanentError):
    pass


@dataclass(frozen=True, slots=True)
class PropertyConfig:
    """One device property as the merged spec describes it."""

    name: str
    type: str
    access_mode: str = "ReadWrite"
    visitor: Mapping[str, Any] = field(default_factory=dict)
    collect_cycle_ms: int = 1000
    report_cycle_ms: int = 1000
    report_to_cloud: bool = True
    push_method: Mapping[str, Any] = field(default_factory=dict)
    minimum: float | None = None
    maximum: float | None = None

    @property
    def subscribed(self) -> bool:
        """The visitor asks for values pushed by the device (`subscribe: true`)."""
        return self.visitor.get("subscribe") is True

    @classmethod
    def from_spec(cls, raw: Mapping[str, Any]) -> PropertyConfig:
        visitors = raw.get("visitors") or {}
        return cls(
            name=str(raw["name"]),
            type=str(raw.get("type", "string")),
            access_mode=str(raw.get("accessMode", "ReadWrite")),
            visitor=dict(visitors.get("configData") or {}),
            collect_cycle_ms=int(raw.get("collectCycle") or 1000),
            report_cycle_ms=int(raw.get("reportCycle") or 1000),
            report_to_cloud=bool(raw.get("reportToCloud", True)),
            push_method=dict(raw.get("pushMethod") or {}),
            minimum=_bound(raw.get("minimum")),
            maximum=_bound(raw.get("maximum")),
        )

    def desired_problem(self, value: str) -> str | None:
        """Why the mapper will not write `value` (the edge checks it too, but a delta may come
        from any client the broker lets publish): access mode, type, the model's range."""
        if self.access_mode == "ReadOnly":
            return f"{self.name} is ReadOnly"
        if self.type == "boolean" and value not in ("true", "false"):
            return f"{value!r} is not true or false"
        if self.type in ("int", "float", "double"):
            if not _NUMBER[self.type].fullmatch(value):
                return f"{value!r} is not {'an integer' if self.type == 'int' else 'a number'}"
            number = float(value)
            if not math.isfinite(number):
                return f"{value!r} is not a finite number"
            if self.minimum is not None and number < self.minimum:
                return f"{value} is below the minimum {self.minimum:g}"
            if self.maximum is not None and number > self.maximum:
                return f"{value} is above the maximum {self.maximum:g}"
        return None


_NUMBER = {
    "int": re.compile(r"[+-]?[0-9]+", re.ASCII),
    "float": re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII),
}
_NUMBER["double"] = _NUMBER["float"]


def _bound(raw: Any) -> float | None:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


class Driver(Protocol):
    """One device's connection. Implementations serialise access to shared buses themselves."""

    async def read(self, prop: PropertyConfig) -> str:
        """The property's current value as twin text."""

    async def write(self, prop: PropertyConfig, value: str) -> None:
        """Write a desired value (twin text)."""

    async def close(self) -> None: ...


ValueCallback = Callable[[str, str], None]  # (property name, twin text)


DriverFactory = Callable[[Mapping[str, Any]], Driver]  # device config -> its driver


@runtime_checkable
class Subscribing(Protocol):
    """A driver whose device can send values by itself (OPC UA data-change subscriptions)."""

    async def subscribe(self, props: list[PropertyConfig], on_value: ValueCallback) -> None:
        """Deliver each property's changes to `on_value` until the connection drops."""


class PerProperty(Generic[T]):
    """A driver's parsed visitor settings per property, parsed again when the property's
    config object is replaced (a spec updated in place hands the driver new ones)."""

    def __init__(self, parse: Callable[[PropertyConfig], T]) -> None:
        self._parse = parse
        self._parsed: dict[str, tuple[PropertyConfig, T]] = {}

    def __call__(self, prop: PropertyConfig) -> T:
        hit = self._parsed.get(prop.name)
        if hit is not None and hit[0] is prop:
            return hit[1]
        value = self._parse(prop)
        self._parsed[prop.name] = (prop, value)
        return value
