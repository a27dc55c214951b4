"""Modbus TCP driver on pymodbus: one client per endpoint, shared and serialised by a lock.

Devices behind one gateway (same ip:port, different `slaveID`) share a connection, because
Modbus TCP gateways and RTU buses serve one request at a time. A failed request closes the
client; the next one reconnects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from mappers.driver import DeviceRejected, DeviceUnreachable, PropertyConfig, VisitorError
from mappers.modbus.codec import CodecError, RegisterSpec, decode, encode, register_spec

DEFAULT_TIMEOUT = 5.0  # seconds, as KubeEdge's Modbus mapper


@dataclass
class Endpoint:
    """One TCP connection and the lock that serialises its requests."""

    host: str
    port: int
    timeout: float
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    client: AsyncModbusTcpClient | None = None
    users: int = 0

    async def connected(self) -> AsyncModbusTcpClient:
        if self.client is None or not self.client.connected:
            client = AsyncModbusTcpClient(
                self.host, port=self.port, timeout=self.timeout, retries=0
            )
            if not await client.connect():
                client.close()
                raise DeviceUnreachable(f"cannot connect to {self.host}:{self.port}")
            self.client = client
        return self.client

    def drop(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None


class EndpointPool:
    """Endpoints by (host, port), shared by the devices of one mapper while any uses them."""

    def __init__(self) -> None:
        self._endpoints: dict[tuple[str, int], Endpoint] = {}

    def acquire(self, host: str, port: int, timeout: float) -> Endpoint:
        endpoint = self._endpoints.setdefault((host, port), Endpoint(host, port, timeout))
        endpoint.users += 1
        return endpoint

    def release(self, endpoint: Endpoint) -> None:
        """The last device on an endpoint closes its connection."""
        endpoint.users -= 1
        if endpoint.users <= 0:
            endpoint.drop()
            self._endpoints.pop((endpoint.host, endpoint.port), None)

    def close(self) -> None:
        for endpoint in self._endpoints.values():
            endpoint.drop()
        self._endpoints.clear()


def _setting(config: Mapping[str, Any], key: str, default: Any = None) -> Any:
    value = config.get(key, default)
    if value is None:
        raise VisitorError(f"protocol configData needs {key!r}")
    return value


class ModbusDriver:
    def __init__(self, config: Mapping[str, Any], pool: EndpointPool) -> None:
        if "serialPort" in config and "ip" not in config:
            raise VisitorError("Modbus RTU (serialPort) is not supported yet; use Modbus TCP")
        try:
            port = int(_setting(config, "port", 502))
            self.device_id = int(_setting(config, "slaveID", 1))
            timeout = float(config.get("timeout", DEFAULT_TIMEOUT))
        except (TypeError, ValueError) as exc:
            raise VisitorError(f"protocol configData: {exc}") from exc
        self._pool = pool
        self.endpoint = pool.acquire(str(_setting(config, "ip")), port, timeout)
        self._specs: dict[str, RegisterSpec] = {}

    def _spec(self, prop: PropertyConfig) -> RegisterSpec:
        spec = self._specs.get(prop.name)
        if spec is None:
            try:
                spec = register_spec(prop.visitor, prop.type)
            except CodecError as exc:
                raise VisitorError(f"{prop.name}: {exc}") from exc
            self._specs[prop.name] = spec
        return spec

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
