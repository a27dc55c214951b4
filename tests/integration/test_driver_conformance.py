"""One suite over every driver and its simulator: the contract the runtime relies on.

Every protocol in `mappers.registry` runs it, with its case from `tests.conformance.<protocol>`:
its simulator with outage and failure switches, its driver, and visitors for the thermostat's
temperature (read-only), setpoint (writable) and serial (string).
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator

import pytest

from mappers.driver import DeviceRejected, DeviceUnreachable, VisitorError
from mappers.registry import PROTOCOLS
from tests.conformance import Case


@pytest.fixture(params=sorted(PROTOCOLS))
async def case(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Case]:
    module = importlib.import_module(f"tests.conformance.{request.param}")
    async for made in module.case(tmp_path_factory):
        yield made


async def test_read_gives_twin_text_of_the_property_type(case: Case) -> None:
    assert await case.driver.read(case.temperature) == "19.5"
    assert await case.driver.read(case.serial) == "KEDGE-TH-0001"


async def test_write_reaches_the_device_and_reads_back(case: Case) -> None:
    await case.driver.write(case.setpoint, "24")
    assert await case.setpoint_of() == 24.0
    assert await case.driver.read(case.setpoint) == "24"


async def test_device_error_is_rejected_and_device_stays_reachable(case: Case) -> None:
    await case.fail(True)
    with pytest.raises(DeviceRejected):
        await case.driver.read(case.temperature)
    await case.fail(False)
    assert await case.driver.read(case.serial) == "KEDGE-TH-0001"


async def test_outage_is_unreachable_and_recovery_needs_no_new_driver(case: Case) -> None:
    assert await case.driver.read(case.serial) == "KEDGE-TH-0001"
    await case.outage()
    with pytest.raises(DeviceUnreachable):
        await case.driver.read(case.serial)
    await case.recover()
    assert await case.driver.read(case.serial) == "KEDGE-TH-0001"


async def test_value_that_does_not_fit_is_a_visitor_error_before_any_io(case: Case) -> None:
    with pytest.raises(VisitorError):
        await case.driver.write(case.setpoint, "warm")
