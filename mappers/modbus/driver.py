"""Modbus TCP and RTU driver on pymodbus: one client per endpoint, shared and locked.

An endpoint is a TCP `ip:port` (the port may be a number or a string, as in KubeEdge's examples)
or a serial port (`serialPort` or `serialName`: a device path such as /dev/ttyUSB0, or any
pyserial URL such as socket://host:port for RTU over a TCP link); `communicateMode` TCP or RTU
picks one explicitly. Devices
on one endpoint (different `slaveID`) share its client, because gateways and RTU buses serve
one request at a time. A failed request closes the client; the next one reconnects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.client.base import ModbusBaseClient
from pymodbus.exceptions import ModbusException

from devicetwin.memberspec import PropertyConfig
from mappers.driver import (
    DeviceRejected,
    DeviceUnreachable,
    PerProperty,
    VisitorError,
)
from mappers.modbus.codec import CodecError, RegisterSpec, decode, encode, register_spec

DEFAULT_TIMEOUT = 5.0  # seconds, as KubeEdge's Modbus mapper


PARITY = {"none": "N", "even": "E", "odd": "O", "n": "N", "e": "E", "o": "O"}
ClientFactory = Callable[[], ModbusBaseClient]


@dataclass
class Endpoint:
    """One connection (TCP or serial) and the lock that serialises its requests."""

    name: str
    make_client: ClientFactory
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    client: ModbusBaseClient | None = None
    users: int = 0

    async def connected(self) -> ModbusBaseClient:
        if self.client is None or not self.client.connected:
            client = self.make_client()
            if not await client.connect():
                client.close()
                raise DeviceUnreachable(f"cannot connect to {self.name}")
            self.client = client
        return self.client

    def drop(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None


class EndpointPool:
    """Endpoints by name (ip:port or serial port), shared while any device uses them."""

    def __init__(self) -> None:
        self._endpoints: dict[str, Endpoint] = {}

    def acquire(self, name: str, make_client: ClientFactory) -> Endpoint:
        endpoint = self._endpoints.setdefault(name, Endpoint(name, make_client))
        endpoint.users += 1
        return endpoint

    def release(self, endpoint: Endpoint) -> None:
        """The last device on an endpoint closes its connection."""
        endpoint.users -= 1
        if endpoint.users <= 0:
            endpoint.drop()
            self._endpoints.pop(endpoint.name, None)

    def close(self) -> None:
        for endpoint in self._endpoints.values():
            endpoint.drop()
        self._endpoints.clear()


def _setting(config: Mapping[str, Any], key: str, default: Any = None) -> Any:
    value = config.get(key, default)
    if value is None:
        raise VisitorError(f"protocol configData needs {key!r}")
    return value


def _tcp(config: Mapping[str, Any], timeout: float) -> tuple[str, ClientFactory]:
    host, port = str(_setting(config, "ip")), int(_setting(config, "port", 502))
    return f"{host}:{port}", lambda: AsyncModbusTcpClient(
        host, port=port, timeout=timeout, retries=0
    )


def _endpoint(config: Mapping[str, Any], timeout: float) -> tuple[str, ClientFactory]:
    """TCP or RTU, as `communicateMode` (KubeEdge's examples: TCP or RTU) says, or else by
    whether a serial port is named (`serialPort`, or the examples' `serialName`)."""
    mode = str(config.get("communicateMode") or "").upper()
    if mode not in ("", "TCP", "RTU"):
        raise VisitorError(f"communicateMode: {config['communicateMode']!r} is not TCP or RTU")
    serial = "serialPort" in config or "serialName" in config
    if mode == "RTU" and not serial:
        raise VisitorError("communicateMode RTU needs serialPort (or serialName)")
    return (_serial if mode == "RTU" or (not mode and serial) else _tcp)(config, timeout)


def _serial(config: Mapping[str, Any], timeout: float) -> tuple[str, ClientFactory]:
    """RTU on a serial port; KubeEdge's keys serialPort (or serialName), baudRate, dataBits,
    parity, stopBits."""
    port = str(config.get("serialPort") or config["serialName"])
    baudrate = int(config.get("baudRate", 19200))
    bytesize = int(config.get("dataBits", 8))
    stopbits = int(config.get("stopBits", 1))
    parity = PARITY.get(str(config.get("parity", "none")).lower())
    if parity is None:
        raise VisitorError(f"parity: {config.get('parity')!r} is not none, even or odd")
    if bytesize not in (5, 6, 7, 8) or stopbits not in (1, 2):
        raise VisitorError("dataBits must be 5-8 and stopBits 1 or 2")
    return port, lambda: AsyncModbusSerialClient(
        port,
        framer=FramerType.RTU,
        baudrate=baudrate,
        bytesize=bytesize,
        parity=parity,
        stopbits=stopbits,
        timeout=timeout,
        retries=0,
    )


def _register_spec(prop: PropertyConfig) -> RegisterSpec:
    try:
        return register_spec(prop.visitor, prop.type)
    except CodecError as exc:
        raise VisitorError(f"{prop.name}: {exc}") from exc


class ModbusDriver:
    def __init__(self, config: Mapping[str, Any], pool: EndpointPool) -> None:
        try:
            self.device_id = int(_setting(config, "slaveID", 1))
            timeout = float(config.get("timeout", DEFAULT_TIMEOUT))
            name, make_client = _endpoint(config, timeout)
        except (TypeError, ValueError) as exc:
            raise VisitorError(f"protocol configData: {exc}") from exc
        self._pool = pool
        self.endpoint = pool.acquire(name, make_client)
        self._spec = PerProperty(_register_spec)

    async def _call(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        async with self.endpoint.lock:
            client = await self.endpoint.connected()
            try:
                reply = await getattr(client, operation)(*args, **kwargs, device_id=self.device_id)
            except (TimeoutError, ModbusException, OSError) as exc:
                self.endpoint.drop()
                raise DeviceUnreachable(f"{operation} failed: {exc}") from exc
        if reply.isError():
            code = getattr(reply, "exception_code", "?")
            raise DeviceRejected(f"{operation} answered with Modbus exception code {code}")
        return reply

    async def read(self, prop: PropertyConfig) -> str:
        spec = self._spec(prop)
        operation = {
            "coil": "read_coils",
            "discrete": "read_discrete_inputs",
            "input": "read_input_registers",
            "holding": "read_holding_registers",
        }[spec.table]
        reply = await self._call(operation, spec.address, count=spec.count)
        try:
            return decode(spec, reply.bits if spec.is_bits else reply.registers)
        except CodecError as exc:
            raise DeviceRejected(f"{prop.name}: {exc}") from exc

    async def write(self, prop: PropertyConfig, value: str) -> None:
        spec = self._spec(prop)
        try:
            values = encode(spec, value)
        except CodecError as exc:
            raise VisitorError(f"{prop.name}: {exc}") from exc
        if spec.is_bits:
            await self._call("write_coil", spec.address, bool(values[0]))
        elif len(values) == 1:
            await self._call("write_register", spec.address, int(values[0]))
        else:
            await self._call("write_registers", spec.address, [int(v) for v in values])

    async def close(self) -> None:
        self._pool.release(self.endpoint)
