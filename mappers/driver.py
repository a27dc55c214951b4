"""What a protocol driver is, and the errors it raises. A new protocol is one module.

The runtime (`mappers.runtime`) owns scheduling, MQTT and device state; a driver only talks to
its device. Errors decide what the runtime does:

    DeviceUnreachable  connection or timeout: counts towards `offline`, reconnect with backoff
    DeviceRejected     the device answered with an error: it is online, this request failed
    VisitorError       the manifest cannot work (bad register, bad value for the type): permanent
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from devicetwin.memberspec import PropertyConfig
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
