"""The delta rule that converges: deltas on desired writes only, write attempts and the reasons
a desired value is not reached, and the bounded retry schedule."""

from __future__ import annotations

import pytest

from devicetwin.model import Attempt, Device, DeviceId, PropertySpec, Twin, TwinValue, Version
from devicetwin.retries import DeltaRetries
from devicetwin.rules import (
    TwinError,
    TwinPatch,
    apply_edge_update,
    build_delta,
    sync_reason,
    unreached,
)

NOW = 1_700_000_000_000
DEV = DeviceId("default/t1")


def device(**twins: Twin) -> Device:
    props = {"setpoint": PropertySpec("setpoint", "int"), "power": PropertySpec("power", "boolean")}
    base = {n: Twin(name=n, type=p.type, optional=False) for n, p in props.items()}
    return Device(id=DEV, name="t1", namespace="default", properties=props, twins=base | twins)


def out_of_sync(attempt: Attempt | None = None, error: str = "") -> Twin:
    return Twin(
        "setpoint",
        "int",
        False,
        expected=TwinValue("40", 1),
        actual=TwinValue("35", 2),
        expected_version=Version(1, 0),
        attempt=attempt,
        error=error,
    )


def test_a_desired_write_names_its_property_for_a_delta() -> None:
    change = apply_edge_update(device(), {"setpoint": TwinPatch(expected="21")}, NOW)
    assert change.desired == ("setpoint",)


def test_a_desired_write_already_reached_needs_no_delta() -> None:
    reached = Twin("setpoint", "int", False, actual=TwinValue("21", 1))
    change = apply_edge_update(
        device(setpoint=reached), {"setpoint": TwinPatch(expected="21")}, NOW
    )
    assert change.desired == ()


def test_a_report_that_misses_desired_is_not_echoed_as_a_delta() -> None:
    change = apply_edge_update(
        device(setpoint=out_of_sync()), {"setpoint": TwinPatch(actual="35")}, NOW
    )
    assert change.desired == () and change.twins["setpoint"].has_delta()


def test_build_delta_limited_to_names() -> None:
    power = Twin("power", "boolean", False, expected=TwinValue("true", 1))
    dev = device(setpoint=out_of_sync(), power=power)
    assert build_delta(dev) == {"setpoint": "40", "power": "true"}
    assert build_delta(dev, ["power"]) == {"power": "true"}


@pytest.mark.parametrize(
    ("twin", "reason", "is_unreached"),
    [
        (out_of_sync(), "waiting for the mapper to write 40", False),
        (out_of_sync(Attempt("40")), "device reports 35 for desired 40", True),
        (
            out_of_sync(Attempt("40", "Modbus exception code 3")),
            "write refused: Modbus exception code 3",
            True,
        ),
        (out_of_sync(Attempt("39")), "waiting for the mapper to write 40", False),  # older value
        (out_of_sync(error="no register 7"), "40 not written: no register 7", False),
        (out_of_sync(Attempt("40"))._replace(actual=TwinValue("40", 3)), "", False),
    ],
)
def test_sync_reason(twin: Twin, reason: str, is_unreached: bool) -> None:
    assert sync_reason(twin) == reason
    assert unreached(twin) is is_unreached


def test_an_attempt_report_records_the_outcome_and_changes_the_status() -> None:
    dev = device(setpoint=out_of_sync())
    patch = TwinPatch(actual="35", attempt=Attempt("40"))
    change = apply_edge_update(dev, {"setpoint": patch}, NOW)
    assert change.twins["setpoint"].attempt == Attempt("40")
    assert change.status_changed and not change.document  # the value did not change
    dev.twins.update(change.twins)
    again = apply_edge_update(dev, {"setpoint": patch}, NOW + 1)
    assert not again.status_changed  # the same outcome again: nothing new for the cloud


def test_an_attempt_alone_keeps_the_values() -> None:
    change = apply_edge_update(
        device(setpoint=out_of_sync()),
        {"setpoint": TwinPatch(attempt=Attempt("40", "refused"))},
        NOW,
    )
    twin = change.twins["setpoint"]
    assert twin.actual == TwinValue("35", 2) and twin.actual_version == Version()
    assert sync_reason(twin) == "write refused: refused"


@pytest.mark.parametrize(
    ("patch", "fragment"),
    [
        (TwinPatch(attempt=Attempt("1", "x" * 513)), "longer than 512"),
        (TwinPatch(attempt=Attempt("1", "a\x00b")), "control characters"),
        (TwinPatch(error="\x1b[31m"), "control characters"),
    ],
)
def test_bad_attempts_and_errors_are_refused(patch: TwinPatch, fragment: str) -> None:
    with pytest.raises(TwinError) as err:
        apply_edge_update(device(), {"setpoint": patch}, NOW)
    assert err.value.code == 400 and fragment in err.value.reason


def test_an_attempt_for_an_unknown_property_is_refused() -> None:
    with pytest.raises(TwinError, match="no such property"):
        apply_edge_update(device(), {"nope": TwinPatch(attempt=Attempt("1"))}, NOW)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_retries_double_up_to_the_cap_and_restart_for_a_new_value() -> None:
    clock = Clock()
    retries = DeltaRetries(clock, initial=1, maximum=4)
    key = (DEV, "setpoint")
    retries.sent(key, "40")
    assert retries.wait() == 1 and retries.due() == []
    sent_at = []
    while clock.now < 120:
        clock.now += 0.5
        if retries.due():
            sent_at.append(clock.now - 100)
    assert sent_at == [1, 3, 7, 11, 15, 19]  # 1, 2, 4, then the cap of 4
    retries.sent(key, "40")  # the same value sent again (a reconnect) keeps the schedule
    assert retries.wait() == pytest.approx(3)
    retries.sent(key, "30")  # a new desired value starts over
    assert retries.wait() == 1


def test_retries_end_when_settled_or_forgotten() -> None:
    retries = DeltaRetries(Clock())
    retries.sent((DEV, "setpoint"), "40")
    retries.sent((DEV, "power"), "true")
    retries.settled((DEV, "setpoint"))
    assert len(retries) == 1
    retries.forget(DEV)
    assert retries.wait() is None and len(retries) == 0
