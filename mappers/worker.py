"""One device's worker: polls its properties, applies its deltas, reports twins and state.

    delta            --> write once, read back, report the value with the attempt
                         ({"desired": D} or {"desired": D, "error": why}), so the edge can say
                         why a value was not reached instead of sending the delta again
    collectCycle     --> read; report on change (optional `deadband`) or every reportCycle
    unreachable      --> `offline` after N failed polls in a row, reconnect with capped backoff;
                         deltas not yet written wait for the device to come back

A new spec for the same device (cycles, visitors) is applied in place: the connection stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from devicetwin.memberspec import PropertyConfig
from devicetwin.model import DeviceId
from devicetwin.topics import state_update_topic, twin_update_topic
from kedge.backoff import Backoff
from mappers.driver import (
    DeviceError,
    DeviceRejected,
    DeviceUnreachable,
    Driver,
    Subscribing,
    VisitorError,
)
from mappers.push import Pusher

if TYPE_CHECKING:
    from mappers.runtime import Mapper

log = logging.getLogger("kedge.mapper")
SUBSCRIBED_POLL = 5.0  # seconds between liveness polls of subscribed properties
REWRITE_GUARD = 0.5  # seconds: a second copy of a delta just written is not written again
JSON = dict[str, Any]
Report = dict[str, JSON]  # property -> MsgTwin fields to send


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def changed(prop: PropertyConfig, old: str | None, new: str) -> bool:
    if old is None:
        return True
    deadband = prop.visitor.get("deadband")
    if deadband is None or prop.type not in ("int", "float", "double"):
        return old != new
    try:
        return abs(float(new) - float(old)) > float(deadband)
    except ValueError:
        return old != new


def pending_desired(entry: JSON) -> dict[str, str]:
    """Desired values a membership entry's device does not show yet (a mapper starting late)."""
    pending = {}
    for name, twin in (entry.get("twin") or {}).items():
        expected = (twin.get("expected") or {}).get("value")
        actual = (twin.get("actual") or {}).get("value")
        if expected and expected != actual:
            pending[name] = expected
    return pending


def properties_of(spec: Mapping[str, Any]) -> dict[str, PropertyConfig]:
    return {p.name: p for p in map(PropertyConfig.from_spec, spec.get("properties", []))}


def needs_restart(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether a new spec needs a new connection: another address (protocol configData), or
    other subscriptions (they live on the connection). Cycles and polled visitors do not."""
    if old.get("protocol") != new.get("protocol"):
        return True
    before, after = properties_of(old), properties_of(new)
    subscribed = {n for n, p in {**before, **after}.items() if p.subscribed}
    return any(before.get(n) != after.get(n) for n in subscribed)


class DeviceWorker:
    """Polls one device and applies its deltas; one asyncio task."""

    def __init__(self, mapper: Mapper, entry: JSON) -> None:
        self.mapper = mapper
        self.id = str(entry["id"])
        self.spec: JSON = entry.get("spec") or {}
        self.properties = properties_of(self.spec)
        self._deltas: dict[str, str] = pending_desired(entry)
        self._written: dict[str, tuple[str, float]] = {}  # property -> (value, when written)
        self._errors: dict[str, str] = {}  # property -> why it cannot be served, as reported
        self._unserved: dict[str, str] = {}  # property -> what of its spec no mapper serves
        self._reported: dict[str, tuple[str, float]] = {}
        self._state = ""
        self._reschedule = False
        self.pusher: Pusher | None = None
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name=f"device {self.id}")

    def on_delta(self, delta: Mapping[str, str]) -> None:
        self._deltas.update({k: v for k, v in delta.items() if isinstance(v, str)})
        self._wake.set()

    def update(self, spec: JSON) -> None:
        """Same connection, new properties (cycles, visitors, push methods): from the next poll."""
        self.spec, self.properties = spec, properties_of(spec)
        self._reschedule = True
        self._wake.set()
        log.info("device spec updated in place", extra={"device": self.id})

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    # ---- reporting ------------------------------------------------------------------------

    def _set_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            log.info("device %s", state, extra={"device": self.id})
            self.announce()

    def announce(self) -> None:
        """Publish the device's state (again, after a reconnect: the edge may have marked it
        unknown while this mapper was away)."""
        if self._state:
            self.mapper.publish(
                state_update_topic(DeviceId(self.id)),
                {"event_id": "", "timestamp": _now_ms(), "state": self._state},
            )

    def _send(self, twin: Report) -> None:
        if twin:
            self.mapper.publish(
                twin_update_topic(DeviceId(self.id)),
                {"event_id": "", "timestamp": _now_ms(), "twin": twin},
            )

    def _value(self, name: str, value: str, now: float) -> JSON:
        self._reported[name] = (value, now)
        return {"actual": {"value": value}, "metadata": {"type": self.properties[name].type}}

    def _due_report(self, prop: PropertyConfig, value: str, now: float) -> bool:
        if not prop.report_to_cloud:
            return False
        last = self._reported.get(prop.name)
        if last is None or changed(prop, last[0], value):
            return True
        return now - last[1] >= prop.report_cycle_ms / 1000

    def _problem(self, report: Report, name: str, read_error: str) -> None:
        """Tell the edge (once per change) why a property cannot be fully served: what the
        spec asks that no kedge mapper does, and the last read's error ("" when it worked)."""
        error = "; ".join(e for e in (self._unserved.get(name, ""), read_error) if e)
        if self._errors.get(name, "") != error:
            if error:
                log.warning("%s cannot be served: %s", name, error, extra={"device": self.id})
            self._errors[name] = error
            report.setdefault(name, {})["error"] = error

    # ---- deltas ---------------------------------------------------------------------------

    async def _apply_deltas(self, driver: Driver) -> Report:
        """Write each pending desired value once, read it back; the report says how it went.
        An unreachable device keeps the values not yet written for after it reconnects."""
        report: Report = {}
        while self._deltas:
            name, desired = next(iter(self._deltas.items()))
            prop = self.properties.get(name)
            problem = "no such property" if prop is None else prop.desired_problem(desired)
            if prop is None or problem is not None or prop.type == "stream":
                log.warning("delta %s=%r refused: %s", name, desired, problem or "a STREAM",
                            extra={"device": self.id})  # fmt: skip
                if prop is not None and problem is not None:
                    report[name] = {
                        "attempt": {
                            "desired": desired,
                            "error": f"refused by the mapper: {problem}",
                        }
                    }
                del self._deltas[name]
                continue
            last = self._written.get(name)
            if (
                last is not None
                and last[0] == desired
                and time.monotonic() - last[1] < REWRITE_GUARD
            ):
                del self._deltas[name]  # a copy of the delta just applied (result and delta)
                continue
            await self._write(driver, prop, desired, report)  # DeviceUnreachable: kept
            if self._deltas.get(name) == desired:
                del self._deltas[name]
        return report

    async def _write(
        self, driver: Driver, prop: PropertyConfig, desired: str, report: Report
    ) -> None:
        try:
            await driver.write(prop, desired)
        except (DeviceRejected, VisitorError) as exc:
            log.warning("write of %s=%s failed: %s", prop.name, desired, exc,
                        extra={"device": self.id})  # fmt: skip
            report[prop.name] = {"attempt": {"desired": desired, "error": str(exc)}}
            return
        now = time.monotonic()
        self._written[prop.name] = (desired, now)
        entry: JSON = {"attempt": {"desired": desired}}
        try:
            entry |= self._value(prop.name, await driver.read(prop), now)
        except (DeviceRejected, VisitorError) as exc:
            log.warning("read-back of %s failed: %s", prop.name, exc, extra={"device": self.id})
        report[prop.name] = entry

    # ---- polling --------------------------------------------------------------------------

    def _on_value(self, name: str, value: str) -> None:
        """A value the device sent by itself (subscription): push it, report if due."""
        prop = self.properties.get(name)
        if prop is None:
            return
        self._push(name, value, prop.type)
        now = time.monotonic()
        if self._due_report(prop, value, now):
            self._send({name: self._value(name, value, now)})

    async def _subscribe(self, driver: Driver) -> bool:
        """Subscribe the properties that ask for it; True if the device now pushes them."""
        wanted = [p for p in self.properties.values() if p.subscribed]
        if not wanted or not isinstance(driver, Subscribing):
            return False
        await driver.subscribe(wanted, self._on_value)
        return True

    def _push(self, name: str, value: str, type_: str) -> None:
        if self.pusher is not None:
            self.pusher.push(name, value, type_, _now_ms())

    def _interval(self, prop: PropertyConfig, subscribed: bool) -> float:
        """Seconds to the next poll; subscribed properties are polled only as a liveness check."""
        if subscribed and prop.subscribed:
            return max(prop.report_cycle_ms / 1000, SUBSCRIBED_POLL)
        return prop.collect_cycle_ms / 1000

    async def _poll(self, driver: Driver, due: list[PropertyConfig]) -> Report:
        now, report = time.monotonic(), Report()
        for prop in due:
            try:
                value = await driver.read(prop)
            except VisitorError as exc:
                self._problem(report, prop.name, str(exc))
                continue
            except DeviceRejected as exc:
                log.warning("read of %s failed: %s", prop.name, exc, extra={"device": self.id})
                continue
            self._problem(report, prop.name, "")
            self._push(prop.name, value, prop.type)
            if self._due_report(prop, value, now):
                report[prop.name] = report.get(prop.name, {}) | self._value(prop.name, value, now)
        return report

    # ---- the loop -------------------------------------------------------------------------

    def _unservable(self, error: DeviceError) -> None:
        log.error("device cannot be served: %s", error, extra={"device": self.id})
        self._set_state("unhealthy")

    async def _configure_push(self, pusher: Pusher) -> None:
        """Push targets, and a reason on each property whose pushMethod kedge cannot serve."""
        await pusher.configure({n: p.push_method for n, p in self.properties.items()
                                if p.push_method})  # fmt: skip
        self._unserved = dict(pusher.unsupported)
        for name, prop in self.properties.items():
            if prop.type == "stream":
                self._unserved[name] = (f"STREAM properties are not served by kedge's "
                                        f"{self.mapper.settings.protocol} mapper")  # fmt: skip
        report: Report = {}
        for name in self.properties:
            self._problem(report, name, "")
        self._send(report)

    async def _run(self) -> None:
        try:
            driver = self.mapper.driver_factory(self.spec.get("protocol", {}).get("configData", {}))
        except DeviceError as exc:
            self._unservable(exc)
            return
        self.pusher = Pusher(self.id)
        try:
            await self._configure_push(self.pusher)
            await self._serve(driver, self.pusher)
        except DeviceError as exc:  # a push target that cannot work (bad address, ...)
            self._unservable(exc)
        finally:
            await self.pusher.close()
            await driver.close()

    async def _serve(self, driver: Driver, pusher: Pusher) -> None:
        loop = asyncio.get_running_loop()
        next_due = dict.fromkeys(self.properties, 0.0)
        failures, subscribed = 0, False
        backoff = Backoff(0.5, self.mapper.settings.max_backoff)
        while True:
            if self._reschedule:  # a spec update: new properties, new cycles, new push targets
                self._reschedule = False
                next_due = {n: next_due.get(n, 0.0) for n in self.properties}
                await self._configure_push(pusher)  # raises for a bad new target
            try:
                if not subscribed:
                    subscribed = await self._subscribe(driver)
                self._send(await self._apply_deltas(driver))
                now = loop.time()
                due = [p for p in self.properties.values()
                       if next_due[p.name] <= now and p.type != "stream"]  # fmt: skip
                for prop in due:
                    next_due[prop.name] = now + self._interval(prop, subscribed)
                self._send(await self._poll(driver, due))
                failures = 0
                backoff.reset()
                self._set_state("online")
                pending = [t for n, t in next_due.items() if self.properties[n].type != "stream"]
                wait = max(0.0, min(pending, default=now + 3600) - loop.time())
            except Exception as exc:  # noqa: BLE001 - one device's failure stays its own
                failures += 1
                if failures >= self.mapper.settings.offline_after:
                    self._set_state("offline")
                if isinstance(exc, DeviceUnreachable):
                    log.info("device unreachable: %s", exc, extra={"device": self.id})
                else:  # a driver bug or a library error it does not know: retried all the same
                    log.error("driver failed: %r", exc, exc_info=exc, extra={"device": self.id})
                wait = backoff.next()
                next_due = dict.fromkeys(self.properties, 0.0)
                subscribed = False  # subscriptions died with the connection
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
            self._wake.clear()
