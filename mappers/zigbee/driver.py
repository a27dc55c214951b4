"""ZigBee driver on zigpy: ZCL attribute reads and writes, cluster commands, attribute reports.

Protocol configData: the radio keys of `mappers.zigbee.network` plus `ieee`, the device's
64-bit address (a device standing for the coordinator itself leaves it out and carries only
network properties) and `timeout` (s, default 5). Visitor configData: `mappers.zigbee.codec`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

import zigpy.exceptions
import zigpy.types as t
from zigpy.zcl import foundation

from devicetwin.memberspec import PropertyConfig
from mappers.driver import (
    DeviceRejected,
    DeviceUnreachable,
    PerProperty,
    ValueCallback,
    VisitorError,
)
from mappers.zigbee.codec import ZclCodecError, ZclSpec, to_raw, to_text, zcl_spec
from mappers.zigbee.network import Network, NetworkPool, Radio

log = logging.getLogger("kedge.mapper.zigbee")
DEFAULT_TIMEOUT = 5.0
_SUCCESS = foundation.Status.SUCCESS


def _ieee(config: Mapping[str, Any]) -> t.EUI64 | None:
    raw = config.get("ieee")
    if raw is None:
        return None
    try:
        return t.EUI64.convert(str(raw))
    except ValueError as exc:
        raise VisitorError(f"ieee: {raw!r} is not a 64-bit address like 00:12:4b:...") from exc


def _zcl_spec(prop: PropertyConfig) -> ZclSpec:
    try:
        return zcl_spec(prop.visitor, prop.type)
    except ZclCodecError as exc:
        raise VisitorError(f"{prop.name}: {exc}") from exc


class ZigbeeDriver:
    """One device on a shared network; the network serialises nothing: zigpy queues requests."""

    def __init__(self, config: Mapping[str, Any], pool: NetworkPool) -> None:
        self.ieee = _ieee(config)
        try:
            self.timeout = float(config.get("timeout", DEFAULT_TIMEOUT))
        except (TypeError, ValueError) as exc:
            raise VisitorError(f"timeout: {exc}") from exc
        self._pool = pool
        self.network: Network = pool.acquire(Radio.from_config(config))
        self._spec = PerProperty(_zcl_spec)
        self._subscribed_generation: int | None = None
        self._unsubscribe: list[Callable[[], None]] = []
        self._subscription: tuple[list[PropertyConfig], ValueCallback] | None = None

    async def _cluster(self, prop: PropertyConfig, spec: ZclSpec, resubscribe: bool = True) -> Any:
        if self.ieee is None:
            raise VisitorError(f"{prop.name}: protocol configData needs ieee for ZCL properties")
        device = await self.network.device(self.ieee)
        if (
            resubscribe
            and self._subscription
            and self._subscribed_generation != self.network.generation
        ):
            # a restarted radio means new zigpy objects: listen and configure reporting again
            await self.subscribe(*self._subscription)
        endpoint = device.endpoints.get(spec.endpoint)
        if endpoint is None:
            if not device.is_initialized:
                raise DeviceUnreachable(f"{self.ieee} is still being interviewed")
            raise VisitorError(f"{prop.name}: device has no endpoint {spec.endpoint}")
        clusters = endpoint.in_clusters
        if isinstance(spec.cluster, int):
            cluster = clusters.get(spec.cluster)
        else:
            cluster = next((c for c in clusters.values() if c.ep_attribute == spec.cluster), None)
        if cluster is None:
            raise VisitorError(
                f"{prop.name}: endpoint {spec.endpoint} has no server cluster {spec.cluster!r}"
            )
        return cluster

    def _attribute(self, prop: PropertyConfig, spec: ZclSpec, cluster: Any) -> Any:
        try:
            return cluster.find_attribute(spec.attribute)
        except KeyError:
            raise VisitorError(
                f"{prop.name}: cluster {cluster.ep_attribute} has no attribute {spec.attribute!r}"
            ) from None

    async def _request(self, prop: PropertyConfig, call: Any) -> Any:
        try:
            async with asyncio.timeout(self.timeout):
                return await call
        except TimeoutError as exc:
            raise DeviceUnreachable(f"{prop.name}: no answer in {self.timeout:g}s") from exc
        except zigpy.exceptions.ParsingError as exc:
            raise DeviceRejected(f"{prop.name}: undecodable answer: {exc}") from exc
        except zigpy.exceptions.ZigbeeException as exc:  # delivery failed, radio gone
            raise DeviceUnreachable(f"{prop.name}: {exc!r}") from exc
        except (OSError, ConnectionError) as exc:
            raise DeviceUnreachable(f"{prop.name}: {exc!r}") from exc

    async def read(self, prop: PropertyConfig) -> str:
        spec = self._spec(prop)
        if spec.network == "permitJoin":
            return str(await self.network.held_open())
        if spec.attribute is None:
            raise VisitorError(f"{prop.name}: write-only (commands without attribute)")
        cluster = await self._cluster(prop, spec)
        attribute = self._attribute(prop, spec, cluster)
        success, failure = await self._request(
            prop, cluster.read_attributes([attribute.id], allow_cache=False)
        )
        if attribute.id in failure or attribute.name in failure:
            status = failure.get(attribute.id, failure.get(attribute.name))
            raise DeviceRejected(f"{prop.name}: device answered {_status(status)}")
        value = success.get(attribute.name, success.get(attribute.id))
        if value is None:
            raise DeviceRejected(f"{prop.name}: device answered without the attribute")
        try:
            return to_text(spec, value)
        except ZclCodecError as exc:
            raise DeviceRejected(f"{prop.name}: {exc}") from exc

    async def write(self, prop: PropertyConfig, value: str) -> None:
        spec = self._spec(prop)
        if spec.network == "permitJoin":
            await self.network.permit(_permit_seconds(prop, value))
            return
        try:
            raw = to_raw(spec, value)
        except ZclCodecError as exc:
            raise VisitorError(f"{prop.name}: {exc}") from exc
        cluster = await self._cluster(prop, spec)
        if spec.commands or spec.command:
            await self._command(prop, spec, cluster, value, raw)
            return
        attribute = self._attribute(prop, spec, cluster)
        typed = _typed(prop, attribute.type, raw)
        records = await self._request(prop, cluster.write_attributes({attribute.id: typed}))
        for record in records[0] if records else []:
            if record.status != _SUCCESS:
                raise DeviceRejected(f"{prop.name}: device answered {_status(record.status)}")

    async def _command(
        self, prop: PropertyConfig, spec: ZclSpec, cluster: Any, text: str, raw: Any
    ) -> None:
        if spec.commands:
            name = spec.commands.get(text)
            if name is None:
                raise VisitorError(
                    f"{prop.name}: no command for {text!r}; have {list(spec.commands)}"
                )
            kwargs: dict[str, Any] = dict(spec.args)
        else:
            name = str(spec.command)
            kwargs = {**spec.args, str(spec.argument): raw}
        definition = next((c for c in cluster.server_commands.values() if c.name == name), None)
        if definition is None:
            raise VisitorError(f"{prop.name}: cluster {cluster.ep_attribute} has no command {name}")
        if spec.argument and isinstance(raw, float):
            kwargs[spec.argument] = round(raw)
        try:
            definition.schema(**kwargs)  # arguments that do not fit fail here, before any I/O
        except (TypeError, ValueError, KeyError) as exc:
            raise VisitorError(f"{prop.name}: arguments for {name}: {exc}") from exc
        response = await self._request(prop, cluster.command(definition.id, **kwargs))
        status = getattr(response, "status", _SUCCESS)
        if status != _SUCCESS:
            raise DeviceRejected(f"{prop.name}: {name} answered {_status(status)}")

    async def subscribe(self, props: list[PropertyConfig], on_value: ValueCallback) -> None:
        """Bind each cluster to the coordinator and configure reporting; reports arrive as
        zigpy `attribute_report` events until the radio restarts."""
        await self.network.application()
        self._drop_listeners()
        self._subscription = (props, on_value)
        self._subscribed_generation = self.network.generation
        for prop in props:
            spec = self._spec(prop)
            if spec.attribute is None:
                raise VisitorError(f"{prop.name}: subscribe needs an attribute")
            cluster = await self._cluster(prop, spec, resubscribe=False)
            attribute = self._attribute(prop, spec, cluster)
            await self._request(prop, cluster.bind())
            result = await self._request(
                prop,
                cluster.configure_reporting(
                    attribute.id, spec.min_interval, spec.max_interval, spec.reportable_change
                ),
            )
            for status in result.values():
                if status != _SUCCESS:
                    raise DeviceRejected(
                        f"{prop.name}: configure reporting answered {_status(status)}"
                    )

            def deliver(
                event: Any,
                prop: PropertyConfig = prop,
                spec: ZclSpec = spec,
                attrid: int = attribute.id,
            ) -> None:
                if event.attribute_id != attrid:
                    return
                try:
                    on_value(prop.name, to_text(spec, event.value))
                except ZclCodecError as exc:  # a malformed report is dropped; polls correct it
                    log.warning("report for %s dropped: %s", prop.name, exc)

            self._unsubscribe.append(cluster.on_event("attribute_report", deliver))

    def _drop_listeners(self) -> None:
        for unsubscribe in self._unsubscribe:
            with contextlib.suppress(KeyError, ValueError):
                unsubscribe()
        self._unsubscribe.clear()

    async def close(self) -> None:
        self._subscription = None
        self._drop_listeners()
        await self._pool.release(self.network)


def _status(status: Any) -> str:
    return getattr(status, "name", str(status))


def _permit_seconds(prop: PropertyConfig, value: str) -> int:
    try:
        seconds = int(float(value))
    except ValueError:
        raise VisitorError(f"{prop.name}: {value!r} is not a number of seconds") from None
    if not 0 <= seconds <= 254:
        raise VisitorError(f"{prop.name}: {seconds} is outside 0..254 seconds")
    return seconds


def _typed(prop: PropertyConfig, attribute_type: type, raw: Any) -> Any:
    """`raw` as the attribute's own ZCL type; a value that does not fit is the manifest's error."""
    if isinstance(raw, float) and issubclass(attribute_type, int):
        raw = round(raw)
    try:
        return attribute_type(raw)
    except (TypeError, ValueError, OverflowError) as exc:
        raise VisitorError(f"{prop.name}: {raw!r} does not fit {attribute_type.__name__}") from exc
