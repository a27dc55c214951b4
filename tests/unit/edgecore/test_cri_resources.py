"""A container's resources as CRI's Linux resources, as kubelet maps them."""

from __future__ import annotations

import pytest

from edgecore.edged.cri.resources import linux_resources, quantity


def test_limits_and_requests() -> None:
    out = linux_resources(
        {"limits": {"memory": "64Mi", "cpu": "500m"}, "requests": {"cpu": "250m"}}
    )
    assert out.memory_limit_in_bytes == 64 << 20
    assert (out.cpu_period, out.cpu_quota, out.cpu_shares) == (100_000, 50_000, 256)
    assert linux_resources({"limits": {"cpu": "2"}}).cpu_shares == 2048  # request = limit
    assert linux_resources({}).memory_limit_in_bytes == 0


@pytest.mark.parametrize("raw", ["lots", "-1", "1Zi", True, None, "1..2"])
def test_bad_quantities_are_refused(raw: object) -> None:
    with pytest.raises(ValueError, match="limits.memory"):
        quantity(raw, "limits.memory")
