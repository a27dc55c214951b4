"""OPC UA: the simulator seen by asyncua's own command-line tools, and the mapper's driver."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from devicetwin.memberspec import PropertyConfig
from harness.support import free_port
from mappers.driver import DeviceRejected, DeviceUnreachable, VisitorError
from mappers.opcua.driver import OpcUaDriver, SessionPool
from simulators.opcua import OpcUaSimulator
from simulators.thermostat import Thermostat

BIN = Path(sys.executable).parent


def prop(
    name: str, type_: str, node: str, access: str = "ReadWrite", **extra: str
) -> PropertyConfig:
    return PropertyConfig(name, type_, access, {"nodeID": f"ns=2;s=Thermostat.{node}", **extra})


TEMPERATURE = prop("temperature", "double", "Temperature", "ReadOnly")
SETPOINT = prop("setpoint", "double", "Setpoint")
POWER = prop("power", "boolean", "Power")
SERIAL = prop("serial", "string", "Serial", "ReadOnly")


@pytest.fixture
async def sim() -> AsyncIterator[OpcUaSimulator]:
    simulator = OpcUaSimulator(free_port(), state=Thermostat(temperature=20.0, setpoint=20.0))
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def driver(sim: OpcUaSimulator) -> AsyncIterator[OpcUaDriver]:
    opcua = OpcUaDriver({"url": sim.url, "timeout": 2}, SessionPool())
    yield opcua
    await opcua.close()


def ua_tool(*args: str) -> str:
    result = subprocess.run(
        [str(BIN / args[0]), *args[1:]], capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout


async def test_asyncua_cli_tools_when_used_read_and_write_the_simulator(sim) -> None:
    out = await asyncio.to_thread(
        ua_tool, "uaread", "-u", sim.url, "-n", "ns=2;s=Thermostat.Serial"
    )
    assert "KEDGE-TH-0001" in out
    await asyncio.to_thread(
        ua_tool,
        "uawrite",
        "-u",
        sim.url,
        "-n",
        "ns=2;s=Thermostat.Setpoint",
        "-t",
        "double",
        "26.5",
    )
    await sim.tick()  # the device takes the written value into its model
    assert sim.state.setpoint == 26.5


async def test_driver_when_reading_gives_typed_text(driver) -> None:
    assert await driver.read(TEMPERATURE) == "20"
    assert await driver.read(SERIAL) == "KEDGE-TH-0001"
    assert await driver.read(POWER) == "true"
    assert await driver.read(SETPOINT) == "20"


async def test_driver_when_writing_reaches_the_model(driver, sim) -> None:
    await driver.write(SETPOINT, "24.5")
    await driver.write(POWER, "false")
    await sim.tick()
    assert sim.state.setpoint == 24.5 and sim.state.power is False
    assert await driver.read(SETPOINT) == "24.5"


async def test_setpoint_out_of_range_when_written_snaps_back(driver, sim) -> None:
    await driver.write(SETPOINT, "80")
    await sim.tick()
    assert sim.state.setpoint == 20.0 and await driver.read(SETPOINT) == "20"


async def test_driver_when_writing_read_only_node_is_rejected(driver) -> None:
    with pytest.raises(DeviceRejected, match="temperature"):
        await driver.write(TEMPERATURE, "30")


async def test_driver_when_variant_type_mismatches_is_rejected(driver) -> None:
    with pytest.raises(DeviceRejected):
        await driver.write(prop("setpoint", "int", "Setpoint"), "24")  # Int32 into a Double
    await driver.write(prop("setpoint", "int", "Setpoint", dataType="Double"), "24")


@pytest.mark.parametrize(
    ("visitor", "fragment"),
    [({"nodeID": "not a node id"}, "nodeID"), ({}, "needs a nodeID")],
)
async def test_driver_when_node_id_bad_is_a_visitor_error(driver, visitor, fragment) -> None:
    with pytest.raises(VisitorError, match=fragment):
        await driver.read(PropertyConfig("x", "double", "ReadOnly", visitor))


async def test_driver_when_server_down_is_unreachable_then_recovers(driver, sim) -> None:
    assert await driver.read(SERIAL) == "KEDGE-TH-0001"
    await sim.stop()
    with pytest.raises(DeviceUnreachable):
        await driver.read(SERIAL)
    await sim.start()
    assert await driver.read(SERIAL) == "KEDGE-TH-0001"


async def test_username_password_when_required_is_checked() -> None:
    simulator = OpcUaSimulator(free_port(), username="operator", password="s3cret")
    await simulator.start()
    try:
        good = OpcUaDriver(
            {"url": simulator.url, "userName": "operator", "password": "s3cret", "timeout": 2},
            SessionPool(),
        )
        assert await good.read(SERIAL) == "KEDGE-TH-0001"
        await good.close()
        for config in ({"userName": "operator", "password": "wrong"}, {}):
            bad = OpcUaDriver({"url": simulator.url, "timeout": 2, **config}, SessionPool())
            with pytest.raises(DeviceRejected, match="refused the session"):
                await bad.read(SERIAL)
            await bad.close()
    finally:
        await simulator.stop()


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"url": "http://x"}, "opc.tcp"),
        ({"url": "opc.tcp://x:1", "securityPolicy": "Basic256"}, "not supported"),
        (
            {"url": "opc.tcp://x:1", "securityPolicy": "Basic256Sha256", "securityMode": "Encrypt"},
            "securityMode",
        ),
        (
            {"url": "opc.tcp://x:1", "securityPolicy": "Basic256Sha256", "certificate": "c.der"},
            "come together",
        ),
    ],
)
def test_driver_when_protocol_config_invalid_says_why(config, fragment) -> None:
    with pytest.raises(VisitorError, match=fragment):
        OpcUaDriver(config, SessionPool())


async def test_basic256sha256_when_required_connects_with_generated_certificate(
    tmp_path: Path,
) -> None:
    simulator = OpcUaSimulator(
        free_port(), certificates=tmp_path / "server", username="operator", password="s3cret"
    )
    await simulator.start()
    try:
        plain = OpcUaDriver(
            {"url": simulator.url, "timeout": 2, "userName": "operator", "password": "s3cret"},
            SessionPool(),
        )
        with pytest.raises((DeviceRejected, DeviceUnreachable)):
            await plain.read(SERIAL)  # the server offers no unsecured endpoint
        await plain.close()
        secure = OpcUaDriver(
            {
                "url": simulator.url,
                "timeout": 4,
                "userName": "operator",
                "password": "s3cret",
                "securityPolicy": "Basic256Sha256",
                "securityMode": "SignAndEncrypt",
            },
            SessionPool(),
        )
        assert await secure.read(SERIAL) == "KEDGE-TH-0001"
        await secure.write(SETPOINT, "23")
        await simulator.tick()
        assert simulator.state.setpoint == 23.0
        await secure.close()
    finally:
        await simulator.stop()


async def test_basic256sha256_when_certificate_files_given_uses_them(tmp_path: Path) -> None:
    from asyncua.crypto.cert_gen import setup_self_signed_certificate
    from cryptography.x509.oid import ExtendedKeyUsageOID

    from mappers.opcua.driver import APPLICATION_URI

    key, cert = tmp_path / "key.pem", tmp_path / "cert.der"
    await setup_self_signed_certificate(
        key,
        cert,
        APPLICATION_URI,
        "localhost",
        [ExtendedKeyUsageOID.CLIENT_AUTH],
        {"commonName": "t"},
    )
    simulator = OpcUaSimulator(free_port(), certificates=tmp_path / "server")
    await simulator.start()
    try:
        driver = OpcUaDriver(
            {
                "url": simulator.url,
                "timeout": 4,
                "securityPolicy": "Basic256Sha256",
                "certificate": str(cert),
                "privateKey": str(key),
            },
            SessionPool(),
        )
        assert await driver.read(SERIAL) == "KEDGE-TH-0001"
        await driver.close()
    finally:
        await simulator.stop()


async def test_device_failure_fault_when_set_is_rejected_not_unreachable(driver, sim) -> None:
    sim.device_failure = True
    await sim.tick()
    with pytest.raises(DeviceRejected, match="BadDeviceFailure"):
        await driver.read(TEMPERATURE)
    sim.device_failure = False
    await sim.tick()
    assert await driver.read(SERIAL) == "KEDGE-TH-0001"


async def test_delay_fault_when_longer_than_timeout_makes_device_unreachable(driver, sim) -> None:
    assert await driver.read(SERIAL) == "KEDGE-TH-0001"
    sim.delay = 3.0  # the driver's timeout is 2 s
    with pytest.raises(DeviceUnreachable):
        await driver.read(SERIAL)
    sim.delay = 0.0
    assert await driver.read(SERIAL) == "KEDGE-TH-0001"  # reconnects
