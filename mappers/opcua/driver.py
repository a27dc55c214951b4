"""OPC UA driver on asyncua: one session per endpoint URL, shared by its devices and locked.

Protocol configData (KubeEdge's keys): `url`, `userName`, `password`, `timeout` (seconds),
`securityPolicy` (`None` or `Basic256Sha256`), `securityMode` (`SignAndEncrypt` or `Sign`),
`certificate` and `privateKey` (client certificate files; without them a self-signed client
certificate is generated once per mapper process, which servers that trust on first use accept).
Visitor configData: `nodeID` (`ns=2;s=...`, `ns=2;i=...`), and optionally `dataType`
(an OPC UA variant type such as `Int16`, `UInt32`, `Float`) when the model property's type
does not say it: by default int -> Int32, float -> Float, double -> Double, boolean -> Boolean,
string -> String, bytes -> ByteString.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import contextlib
import logging
import math
import shutil
import socket
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asyncua import ua
from asyncua.client.client import Client
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from asyncua.ua.uaerrors import UaError, UaStatusCodeError
from cryptography.x509.oid import ExtendedKeyUsageOID

from devicetwin.memberspec import PropertyConfig
from mappers.driver import (
    DeviceRejected,
    DeviceUnreachable,
    PerProperty,
    ValueCallback,
    VisitorError,
)

log = logging.getLogger("kedge.mapper.opcua")
DEFAULT_TIMEOUT = 4.0
APPLICATION_URI = "urn:kedge:mapper:opcua"
MODES = {
    "SignAndEncrypt": ua.MessageSecurityMode.SignAndEncrypt,
    "Sign": ua.MessageSecurityMode.Sign,
}
_generated: tuple[Path, Path] | None = None


@dataclass(frozen=True)
class Security:
    """Basic256Sha256 with a client certificate; files, or None to generate one."""

    mode: str
    certificate: str | None = None
    private_key: str | None = None


async def client_certificate() -> tuple[Path, Path]:
    """This process's self-signed client certificate and key, generated on first use."""
    global _generated
    if _generated is None:
        directory = Path(tempfile.mkdtemp(prefix="kedge-opcua-"))
        atexit.register(shutil.rmtree, directory, True)  # the key is this process's alone
        key, cert = directory / "client-key.pem", directory / "client-cert.der"
        await setup_self_signed_certificate(
            key,
            cert,
            APPLICATION_URI,
            socket.gethostname(),
            [ExtendedKeyUsageOID.CLIENT_AUTH],
            {"commonName": "kedge OPC UA mapper"},
        )
        _generated = (key, cert)
    return _generated


def security_of(config: Mapping[str, Any]) -> Security | None:
    policy = str(config.get("securityPolicy") or "None")
    if policy == "None":
        return None
    if policy != "Basic256Sha256":
        raise VisitorError(
            f"securityPolicy {policy!r} is not supported; use None or Basic256Sha256"
        )
    mode = str(config.get("securityMode") or "SignAndEncrypt")
    if mode not in MODES:
        raise VisitorError(f"securityMode {mode!r} is not SignAndEncrypt or Sign")
    certificate, private_key = config.get("certificate"), config.get("privateKey")
    if bool(certificate) != bool(private_key):
        raise VisitorError("certificate and privateKey come together")
    return Security(mode, certificate or None, private_key or None)


VARIANTS = {
    "int": "Int32",
    "float": "Float",
    "double": "Double",
    "boolean": "Boolean",
    "string": "String",
    "bytes": "ByteString",
}
_INTEGER_VARIANTS = {"SByte", "Byte", "Int16", "UInt16", "Int32", "UInt32", "Int64", "UInt64"}


def to_text(value: Any, type_: str) -> str:
    """A value read from the server as twin text for a property of `type_`."""
    if isinstance(value, bool) or type_ == "boolean":
        return "true" if value else "false"
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, float):
        if not math.isfinite(value):
            raise DeviceRejected(f"server returned a non-finite number {value}")
        if type_ == "int":
            return str(int(value))
        return f"{value:.6f}".rstrip("0").rstrip(".") or "0"
    return str(value)


def to_variant(text: str, variant_name: str) -> ua.Variant:
    """Twin text as the variant the server expects."""
    variant = getattr(ua.VariantType, variant_name, None)
    if variant is None:
        raise VisitorError(f"dataType: {variant_name!r} is not an OPC UA variant type")
    try:
        if variant_name == "Boolean":
            if text not in ("true", "false"):
                raise ValueError(f"{text!r} is not true or false")
            value: Any = text == "true"
        elif variant_name in _INTEGER_VARIANTS:
            value = int(text)
        elif variant_name in ("Float", "Double"):
            value = float(text)
        elif variant_name == "ByteString":
            value = base64.b64decode(text, validate=True)
        else:
            value = text
    except ValueError as exc:
        raise VisitorError(f"{text!r} is not a {variant_name}: {exc}") from exc
    return ua.Variant(value, variant)


@dataclass
class Session:
    url: str
    username: str | None
    password: str | None
    timeout: float
    security: Security | None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    client: Client | None = None
    users: int = 0

    async def connected(self) -> Client:
        if self.client is None:
            client = Client(url=self.url, timeout=self.timeout)
            if self.username:
                client.set_user(self.username)
                client.set_password(self.password or "")
            try:
                if self.security is not None:
                    await self._secure(client, self.security)
                await client.connect()
            except UaStatusCodeError as exc:
                raise DeviceRejected(f"{self.url} refused the session: {exc}") from exc
            except (OSError, TimeoutError, UaError) as exc:
                raise DeviceUnreachable(f"cannot connect to {self.url}: {exc}") from exc
            self.client = client
        return self.client

    @staticmethod
    async def _secure(client: Client, security: Security) -> None:
        if security.certificate and security.private_key:
            certificate, private_key = security.certificate, security.private_key
        else:
            key, cert = await client_certificate()
            certificate, private_key = str(cert), str(key)
        client.application_uri = APPLICATION_URI
        await client.set_security(
            SecurityPolicyBasic256Sha256,
            certificate=certificate,
            private_key=private_key,
            mode=MODES[security.mode],
        )

    async def drop(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            # the connection may already be gone; nothing is left to close cleanly then
            with contextlib.suppress(OSError, TimeoutError, UaError, ConnectionError):
                await client.disconnect()


class SessionPool:
    """Sessions by (url, user, security), shared while any device uses them."""

    def __init__(self) -> None:
        self._sessions: dict[tuple[str, str | None, Security | None], Session] = {}

    def acquire(
        self,
        url: str,
        username: str | None,
        password: str | None,
        timeout: float,
        security: Security | None,
    ) -> Session:
        key = (url, username, security)
        session = self._sessions.setdefault(
            key, Session(url, username, password, timeout, security)
        )
        session.users += 1
        return session

    async def release(self, session: Session) -> None:
        session.users -= 1
        if session.users <= 0:
            await session.drop()
            self._sessions.pop((session.url, session.username, session.security), None)


def _node_id(prop: PropertyConfig) -> ua.NodeId:
    text = prop.visitor.get("nodeID")
    if not isinstance(text, str) or not text:
        raise VisitorError(f"{prop.name}: visitor needs a nodeID such as ns=2;s=Name")
    try:
        return ua.NodeId.from_string(text)
    except UaError as exc:
        raise VisitorError(f"{prop.name}: nodeID {text!r} does not parse: {exc}") from exc


class OpcUaDriver:
    def __init__(self, config: Mapping[str, Any], pool: SessionPool) -> None:
        url = config.get("url")
        if not isinstance(url, str) or not url.startswith("opc.tcp://"):
            raise VisitorError(f"url: {url!r} is not an opc.tcp:// endpoint")
        security = security_of(config)
        try:
            timeout = float(config.get("timeout", DEFAULT_TIMEOUT))
        except (TypeError, ValueError) as exc:
            raise VisitorError(f"timeout: {exc}") from exc
        self._pool = pool
        user = config.get("userName") or None
        self.session = pool.acquire(url, user, config.get("password"), timeout, security)
        self._node_id = PerProperty(_node_id)  # parsed once: a malformed one is the manifest's

    async def _call(self, prop: PropertyConfig, write: ua.Variant | None) -> Any:
        node_id = self._node_id(prop)
        async with self.session.lock:
            client = await self.session.connected()
            try:
                node = client.get_node(node_id)
                if write is None:
                    return await node.read_value()
                await node.write_value(ua.DataValue(write))
                return None
            except UaStatusCodeError as exc:
                raise DeviceRejected(f"{prop.name} ({node_id}): {exc}") from exc
            except (OSError, TimeoutError, UaError, ConnectionError) as exc:
                await self.session.drop()
                raise DeviceUnreachable(f"{prop.name}: {exc}") from exc

    async def read(self, prop: PropertyConfig) -> str:
        return to_text(await self._call(prop, None), prop.type)

    async def write(self, prop: PropertyConfig, value: str) -> None:
        variant = str(prop.visitor.get("dataType") or VARIANTS.get(prop.type, "String"))
        await self._call(prop, to_variant(value, variant))

    async def subscribe(self, props: list[PropertyConfig], on_value: ValueCallback) -> None:
        """One data-change subscription; publishing interval: the shortest of the properties'
        `publishingInterval` visitor keys (ms), or of their collectCycles."""
        if not props:
            return
        try:
            interval = min(
                int(p.visitor.get("publishingInterval", p.collect_cycle_ms)) for p in props
            )
        except (TypeError, ValueError) as exc:
            raise VisitorError(f"publishingInterval: {exc}") from exc
        by_node = {self._node_id(p).to_string(): p for p in props}
        driver = self

        class Handler:
            def datachange_notification(self, node: Any, value: Any, _data: Any) -> None:
                prop = by_node.get(node.nodeid.to_string())
                if prop is not None:
                    try:
                        on_value(prop.name, to_text(value, prop.type))
                    except DeviceRejected as exc:
                        driver.log_bad_value(prop, exc)

        async with self.session.lock:
            client = await self.session.connected()
            try:
                subscription = await client.create_subscription(interval, Handler())
                await subscription.subscribe_data_change(
                    [client.get_node(node) for node in by_node]
                )
            except UaStatusCodeError as exc:
                raise DeviceRejected(f"subscription refused: {exc}") from exc
            except (OSError, TimeoutError, UaError, ConnectionError) as exc:
                await self.session.drop()
                raise DeviceUnreachable(f"subscription failed: {exc}") from exc

    @staticmethod
    def log_bad_value(prop: PropertyConfig, error: Exception) -> None:
        log.warning("notification for %s dropped: %s", prop.name, error)

    async def close(self) -> None:
        await self._pool.release(self.session)
