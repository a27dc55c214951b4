"""Node heartbeats from the edge are checked before anything is written to the API."""

from __future__ import annotations

from typing import Any

import pytest

from controllers.nodes import EDGE_ROLE, clean_report


def test_report_when_well_formed_keeps_known_fields_and_adds_the_edge_role() -> None:
    labels, status = clean_report(
        {"labels": {"site": "lab"}, "capacity": {"cpu": "2"}, "junk": 1,
         "addresses": [{"type": "Hostname", "address": "h", "extra": "x"}]}
    )  # fmt: skip
    assert labels == {"site": "lab", EDGE_ROLE: ""}
    assert status == {"capacity": {"cpu": "2"}, "addresses": [{"type": "Hostname", "address": "h"}]}


@pytest.mark.parametrize(
    ("report", "fragment"),
    [
        ([], "must be an object"),
        ({"labels": {"a": 1}}, "labels"),
        ({"capacity": {"cpu": 2}}, "capacity"),
        ({"nodeInfo": "x"}, "nodeInfo"),
        ({"addresses": [{"type": "InternalIP"}]}, "addresses"),
        ({"addresses": "10.0.0.1"}, "addresses"),
    ],
)
def test_report_when_malformed_is_refused_with_the_field(report: Any, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        clean_report(report)
