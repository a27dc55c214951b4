"""OPC UA thermostat simulator (asyncua server): the shared model as variables.

    opc.tcp://127.0.0.1:<port>/kedge/   namespace urn:kedge:simulator (index 2)
    ns=2;s=Thermostat.Temperature   Double   read-only
    ns=2;s=Thermostat.Humidity      Double   read-only
    ns=2;s=Thermostat.Setpoint      Double   writable (5..35; outside, it snaps back)
    ns=2;s=Thermostat.Power         Boolean  writable
    ns=2;s=Thermostat.Serial        String   read-only

A tick loop (TICK seconds) advances the model, takes client writes of Setpoint and Power into
it, and publishes the model's values, so subscriptions see changes as a real device's would.
With `username`/`password` set, anonymous sessions and wrong passwords are refused.
Faults: `stop()`/`start()` refuse connections (and drop open ones); `device_failure = True`
makes every variable answer BadDeviceFailure until it is cleared; `delay` holds each client
read and write that many seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asyncua import ua
from asyncua.common.callback import CallbackType, ServerItemCallback
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.server import Server
from asyncua.server.user_managers import UserManager
from asyncua.ua.status_codes import StatusCodes
from cryptography.x509.oid import ExtendedKeyUsageOID

from simulators.cli import run_simulator
from simulators.thermostat import Thermostat, ThermostatError

log = logging.getLogger("kedge.simulator.opcua")
NAMESPACE = "urn:kedge:simulator"
APPLICATION_URI = "urn:kedge:simulator:opcua"
TICK = 0.5  # the device updates its readings twice a second, as a real controller might
_VARIABLES = {  # name -> (variant type, writable)
    "Temperature": (ua.VariantType.Double, False),
    "Humidity": (ua.VariantType.Double, False),
    "Setpoint": (ua.VariantType.Double, True),
    "Power": (ua.VariantType.Boolean, True),
    "Serial": (ua.VariantType.String, False),
}


async def server_certificate(directory: Path, host: str) -> tuple[Path, Path]:
    """A self-signed server key and certificate in `directory` (kept if still valid)."""
    directory.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, at start-up
    key, cert = directory / "simulator-key.pem", directory / "simulator-cert.der"
    await setup_self_signed_certificate(
        key,
        cert,
        APPLICATION_URI,
        host,
        [ExtendedKeyUsageOID.SERVER_AUTH],
        {"commonName": "kedge OPC UA simulator"},
    )
    return key, cert


class PasswordUsers(UserManager):
    """Exactly one user, by name and password; everyone else is refused."""

    def __init__(self, username: str, password: str) -> None:
        self.username, self.password = username, password

    def get_user(
        self,
        iserver: Any,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        if username == self.username and password == self.password:
            return User(role=UserRole.User, name=username)
        return None


def _values(state: Thermostat) -> dict[str, Any]:
    return {
        "Temperature": round(state.temperature, 3),
        "Humidity": state.humidity,
        "Setpoint": state.setpoint,
        "Power": state.power,
        "Serial": state.serial,
    }


class OpcUaSimulator:
    def __init__(
        self,
        port: int,
        host: str = "127.0.0.1",
        state: Thermostat | None = None,
        username: str | None = None,
        password: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        certificates: Path | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.url = f"opc.tcp://{host}:{port}/kedge/"
        self.certificates = certificates  # a directory: serve Basic256Sha256 SignAndEncrypt only
        self.state = state or Thermostat()
        self.username, self.password = username, password
        self._clock = clock
        self._last = clock()
        self._server: Server | None = None
        self._nodes: dict[str, Any] = {}
        self._task: asyncio.Task[None] | None = None
        self.device_failure = False  # fault: every variable reads BadDeviceFailure
        self.delay = 0.0  # fault: seconds before each client read or write is served
        self._failed = False

    async def start(self) -> None:
        users = PasswordUsers(self.username, self.password or "") if self.username else None
        server = Server(user_manager=users)
        await server.init()
        server.set_endpoint(self.url)
        server.set_server_name("kedge OPC UA thermostat simulator")
        if self.certificates is None:
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        else:
            key, cert = await server_certificate(self.certificates, self.host)
            await server.set_application_uri(APPLICATION_URI)
            await server.load_certificate(str(cert))
            await server.load_private_key(str(key))
            server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
        index = await server.register_namespace(NAMESPACE)
        device = await server.nodes.objects.add_object(
            f"ns={index};s=Thermostat", f"{index}:Thermostat"
        )
        values = _values(self.state)
        for name, (variant, writable) in _VARIABLES.items():
            node = await device.add_variable(
                f"ns={index};s=Thermostat.{name}",
                f"{index}:{name}",
                ua.Variant(values[name], variant),
            )
            if writable:
                await node.set_writable()
            self._nodes[name] = node
        for event in (CallbackType.PreRead, CallbackType.PreWrite):
            # asyncua annotates `str` but dispatches CallbackType members itself
            server.iserver.subscribe_server_callback(event, self._before_request)  # type: ignore[arg-type]
        await server.start()
        self._server = server
        self._task = asyncio.create_task(self._tick_forever(), name="opcua simulator tick")
        log.info("opcua simulator listening", extra={"url": self.url})

    async def tick(self) -> None:
        """Advance the model, adopt client writes, publish the values only the device sets.

        Writable variables are written back only to undo a refused write, so a client write
        landing mid-tick is never overwritten.
        """
        if self.device_failure or self._failed:
            await self._apply_failure()
            if self.device_failure:
                return
        now = self._clock()
        state = self.state.step(now - self._last)
        self._last = now
        setpoint = float(await self._nodes["Setpoint"].read_value())
        if setpoint != state.setpoint:
            try:
                state = state.with_setpoint(setpoint)
            except ThermostatError as exc:
                log.info("setpoint refused: %s", exc)
                await self._nodes["Setpoint"].write_value(
                    ua.Variant(state.setpoint, ua.VariantType.Double)
                )
        state = state.with_power(bool(await self._nodes["Power"].read_value()))
        before, self.state = _values(self.state), state
        values = _values(state)
        for name in ("Temperature", "Humidity"):
            if values[name] != before[name]:  # unchanged: nothing to publish
                await self._nodes[name].write_value(ua.Variant(values[name], _VARIABLES[name][0]))

    async def _before_request(self, event: ServerItemCallback, _dispatcher: Any) -> None:
        """The delay fault, for clients only (the tick's own reads stay fast)."""
        if self.delay and event.is_external:
            await asyncio.sleep(self.delay)

    async def _apply_failure(self) -> None:
        """Enter (all variables Bad) or leave (the model's values back) the failure fault."""
        if self.device_failure and not self._failed:
            bad = ua.DataValue(StatusCode=ua.StatusCode(ua.UInt32(StatusCodes.BadDeviceFailure)))
            for node in self._nodes.values():
                await node.write_value(bad)
        elif not self.device_failure and self._failed:
            for name, value in _values(self.state).items():
                await self._nodes[name].write_value(ua.Variant(value, _VARIABLES[name][0]))
        self._failed = self.device_failure

    async def _tick_forever(self) -> None:
        while True:
            await self.tick()
            await asyncio.sleep(TICK)  # the device's own update rate

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._server is not None:
            await self._server.stop()
            self._server = None


async def serve(
    port: int,
    host: str = "127.0.0.1",
    username: str | None = None,
    password: str | None = None,
    certificates: Path | None = None,
) -> None:
    simulator = OpcUaSimulator(
        port, host, username=username, password=password, certificates=certificates
    )
    await simulator.start()
    try:
        await asyncio.Event().wait()
    finally:
        await simulator.stop()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=4840, help="TCP port (default 4840)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--username", help="require this user (default: anonymous allowed)")
    parser.add_argument("--password", help="the user's password")
    parser.add_argument(
        "--secure",
        type=Path,
        metavar="DIR",
        help="serve Basic256Sha256 SignAndEncrypt only, certificate kept in DIR",
    )


async def serve_from(args: argparse.Namespace) -> None:
    """`serve()` with the command line's settings (see `add_arguments`)."""
    await serve(args.port, args.host, args.username, args.password, args.secure)


def main(argv: list[str] | None = None) -> int:
    return run_simulator("python -m simulators.opcua", __doc__, add_arguments, serve_from, argv)


if __name__ == "__main__":
    sys.exit(main())
