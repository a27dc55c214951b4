"""Mapper runtime rules without I/O: deadband, pending desired values, property config."""

from __future__ import annotations

import pytest

from devicetwin.memberspec import PropertyConfig
from mappers.worker import changed as value_changed
from mappers.worker import pending_desired


@pytest.mark.parametrize(
    ("type_", "deadband", "old", "new", "changed"),
    [
        ("float", None, "20.0", "20.0", False),
        ("float", None, "20.0", "20.1", True),
        ("float", 0.5, "20.0", "20.4", False),
        ("float", 0.5, "20.0", "20.6", True),
        ("int", 2, "10", "12", False),
        ("string", 2, "a", "b", True),  # deadband only applies to numbers
        ("float", 0.5, "20.0", "n/a", True),
        ("float", 0.5, None, "20.0", True),
    ],
)
def test_changed_when_deadband_given(
    type_: str, deadband: float | None, old: str | None, new: str, changed: bool
) -> None:
    visitor = {} if deadband is None else {"deadband": deadband}
    assert value_changed(PropertyConfig("p", type_, visitor=visitor), old, new) is changed


def test_pending_desired_when_entry_has_unsynced_twins() -> None:
    twin = {
        "a": {"expected": {"value": "5"}, "actual": {"value": "4"}},
        "b": {"expected": {"value": "5"}, "actual": {"value": "5"}},
        "c": {"expected": {"value": ""}},
        "d": {"actual": {"value": "1"}},
        "e": {"expected": {"value": "on"}},
    }
    assert pending_desired({"twin": twin}) == {"a": "5", "e": "on"}


def test_property_config_when_built_from_merged_spec() -> None:
    prop = PropertyConfig.from_spec(
        {
            "name": "t",
            "type": "float",
            "accessMode": "ReadOnly",
            "collectCycle": 250,
            "reportCycle": 2000,
            "reportToCloud": False,
            "visitors": {"protocolName": "modbus", "configData": {"register": "InputRegister"}},
            "pushMethod": {"mqtt": {"topic": "x"}},
        }
    )
    assert (prop.collect_cycle_ms, prop.report_cycle_ms, prop.report_to_cloud) == (250, 2000, False)
    assert prop.visitor == {"register": "InputRegister"} and prop.push_method == {
        "mqtt": {"topic": "x"}
    }
