"""Which status reports skip the per-device write interval: a desired value observed or reached."""

from __future__ import annotations

from typing import Any

from controllers.status import desired_reached


def _status(observed: str | None, reported: str) -> dict[str, Any]:
    twin: dict[str, Any] = {"propertyName": "sp", "reported": {"value": reported}}
    if observed is not None:
        twin["observedDesired"] = {"value": observed}
    return {"twins": [twin]}


def test_desired_reached_when_setpoint_lands_is_urgent_and_telemetry_is_not() -> None:
    assert desired_reached(_status("21", "21"), _status("24", "21"))  # a new desired observed
    assert desired_reached(_status("24", "21"), _status("24", "24"))  # and reached
    assert not desired_reached(_status("24", "24"), _status("24", "24"))
    assert not desired_reached(_status(None, "19.5"), _status(None, "19.6"))  # telemetry
    assert not desired_reached(_status("24", "21"), _status("24", "22"))  # still on its way
