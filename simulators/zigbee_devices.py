"""Simulated ZigBee end devices answering real ZDO and ZCL frames, parsed with zigpy's schemas.

Radio-independent: a device takes the APS payload a coordinator sent and returns the frames it
answers with, so any radio emulation (`simulators.zigbee` speaks XBee) can carry them.

The devices that ship are in `simulators.zigbee_products`; this module is what they share.

Switches for tests: `online = False` stops the device answering (the radio reports no ACK);
`failing = True` makes it answer every ZCL request with status HARDWARE_FAILURE; `garbled = True`
cuts its ZCL answers short after the header, as a buggy firmware might.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import zigpy.types as t
import zigpy.zdo.types as zdo_t
from zigpy.zcl import Cluster, foundation

HA_PROFILE = 0x0104
ZDO_PROFILE = 0x0000
ENDPOINT = 1
ZDO_ENDPOINT = 0
DEBOUNCE_WINDOW = 10.0  # seconds: zigpy.device.PACKET_DEBOUNCE_WINDOW
_GENERAL = foundation.GeneralCommand
_STATUS = foundation.Status

Getter = Callable[[], Any]
Setter = Callable[[Any], None]


@dataclass(frozen=True, slots=True)
class Frame:
    """One APS frame a device sends towards the coordinator."""

    src_ep: int
    dst_ep: int
    cluster: int
    profile: int
    data: bytes


@dataclass(slots=True)
class Attribute:
    read: Getter
    write: Setter | None = None  # None: read-only


@dataclass(slots=True)
class Reporting:
    """One attribute's Configure Reporting settings and what was last reported."""

    min_interval: float
    max_interval: float
    change: float
    last_value: Any = None
    last_sent: float = float("-inf")


class DeviceRefused(Exception):
    """A request the device answers with a ZCL status other than SUCCESS."""

    def __init__(self, status: foundation.Status) -> None:
        super().__init__(status.name)
        self.status = status


@dataclass
class SimZigbeeDevice:
    ieee: t.EUI64
    nwk: int
    manufacturer: str
    model: str
    serial: str
    device_type: int
    attributes: dict[tuple[int, int], Attribute]
    commands: dict[tuple[int, int], Callable[[Any], None]] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic
    online: bool = True
    failing: bool = False
    garbled: bool = False
    joined: bool = False
    reporting: dict[tuple[int, int], Reporting] = field(default_factory=dict)
    _tsn: int = 0
    _recent: dict[bytes, float] = field(default_factory=dict)  # insertion order = send order

    def __post_init__(self) -> None:
        basic = {
            0x0000: lambda: 8,  # ZCL version
            0x0004: lambda: self.manufacturer,
            0x0005: lambda: self.model,
            0x0007: lambda: 0x01,  # mains powered
            0x000D: lambda: self.serial,
        }
        for attrid, getter in basic.items():
            self.attributes.setdefault((0x0000, attrid), Attribute(getter))

    @property
    def clusters(self) -> list[int]:
        return sorted({cluster for cluster, _ in self.attributes})

    def announce(self) -> Frame:
        """ZDO Device_annce, sent when the device joins."""
        capability = 0x8E  # allocate address, rx on when idle, mains powered, router
        payload = t.serialize((self.nwk, self.ieee, capability), zdo_t.CLUSTERS[0x0013][1])
        return Frame(ZDO_ENDPOINT, ZDO_ENDPOINT, 0x0013, ZDO_PROFILE, bytes([0]) + payload)

    def handle(self, profile: int, cluster: int, dst_ep: int, data: bytes) -> list[Frame]:
        """Frames answering one APS frame from the coordinator (empty: nothing to answer)."""
        if dst_ep == ZDO_ENDPOINT:
            return self._zdo(cluster, data)
        if dst_ep != ENDPOINT or profile != HA_PROFILE:
            return []
        hdr, payload = foundation.ZCLHeader.deserialize(data)
        if hdr.frame_control.frame_type == foundation.FrameType.GLOBAL_COMMAND:
            command, status = self._global(cluster, hdr, payload)
        else:
            command, status = self._cluster_command(cluster, hdr, payload)
        if command is None:
            return []
        return [self._zcl_reply(cluster, hdr.tsn, command, status)]

    def due_reports(self) -> list[Frame]:
        """Attribute reports configured reporting asks for now (on change or at max interval)."""
        if not self.online or not self.joined:
            return []
        now = self.clock()
        frames = []
        for (cluster, attrid), config in self.reporting.items():
            value = self.attributes[(cluster, attrid)].read()
            since = now - config.last_sent
            changed = config.last_value is None or _differs(value, config.last_value, config)
            if since < config.min_interval or not (changed or since >= config.max_interval):
                continue
            config.last_value, config.last_sent = value, now
            record = foundation.Attribute(attrid, self._typed(cluster, attrid, value))
            frames.append(
                self._zcl_frame(cluster, self._next_tsn(), _GENERAL.Report_Attributes, [record])
            )
        return frames

    # ZDO ----------------------------------------------------------------------------------------

    def _zdo(self, cluster: int, data: bytes) -> list[Frame]:
        if cluster not in zdo_t.CLUSTERS or not data:
            return []
        tsn, payload = data[0], data[1:]
        nwk = t.NWK(self.nwk)
        success = zdo_t.Status.SUCCESS
        reply: tuple[Any, ...]
        if cluster == zdo_t.ZDOCmd.Node_Desc_req:
            reply = (success, nwk, _NODE_DESCRIPTOR)
        elif cluster == zdo_t.ZDOCmd.Active_EP_req:
            reply = (success, nwk, [ENDPOINT])
        elif cluster == zdo_t.ZDOCmd.Simple_Desc_req:
            reply = (success, nwk, self._simple_descriptor())
        elif cluster in (zdo_t.ZDOCmd.Bind_req, zdo_t.ZDOCmd.Unbind_req):
            reply = (success,)
        else:
            return []  # broadcasts such as Mgmt_Permit_Joining_req need no answer
        del payload
        rsp = cluster | 0x8000
        encoded = t.serialize(reply, zdo_t.CLUSTERS[rsp][1])
        return [Frame(ZDO_ENDPOINT, ZDO_ENDPOINT, rsp, ZDO_PROFILE, bytes([tsn]) + encoded)]

    def _simple_descriptor(self) -> zdo_t.SizePrefixedSimpleDescriptor:
        descriptor = zdo_t.SizePrefixedSimpleDescriptor()
        descriptor.endpoint = t.uint8_t(ENDPOINT)
        descriptor.profile = t.uint16_t(HA_PROFILE)
        descriptor.device_type = t.uint16_t(self.device_type)
        descriptor.device_version = t.uint8_t(1)
        descriptor.input_clusters = t.LVList[t.uint16_t](self.clusters)
        descriptor.output_clusters = t.LVList[t.uint16_t]([])
        return descriptor

    # ZCL ----------------------------------------------------------------------------------------

    def _global(
        self, cluster: int, hdr: foundation.ZCLHeader, payload: bytes
    ) -> tuple[int | None, Any]:
        command = hdr.command_id
        if command not in foundation.GENERAL_COMMANDS:
            return _GENERAL.Default_Response, _default(command, _STATUS.UNSUP_GENERAL_COMMAND)
        args, _ = foundation.GENERAL_COMMANDS[command].schema.deserialize(payload)
        if command == _GENERAL.Read_Attributes:
            return _GENERAL.Read_Attributes_rsp, [
                self._read_record(cluster, attrid) for attrid in args.attribute_ids
            ]
        if command == _GENERAL.Write_Attributes:
            return _GENERAL.Write_Attributes_rsp, self._write(cluster, args.attributes)
        if command == _GENERAL.Configure_Reporting:
            return _GENERAL.Configure_Reporting_rsp, self._configure(cluster, args.config_records)
        if command == _GENERAL.Default_Response:
            return None, None
        return _GENERAL.Default_Response, _default(command, _STATUS.UNSUP_GENERAL_COMMAND)

    def _read_record(self, cluster: int, attrid: int) -> foundation.ReadAttributeRecord:
        attribute = self.attributes.get((cluster, attrid))
        if attribute is None:
            return foundation.ReadAttributeRecord(attrid, _STATUS.UNSUPPORTED_ATTRIBUTE)
        if self.failing:
            return foundation.ReadAttributeRecord(attrid, _STATUS.HARDWARE_FAILURE)
        value = self._typed(cluster, attrid, attribute.read())
        return foundation.ReadAttributeRecord(attrid, _STATUS.SUCCESS, value)

    def _write(
        self, cluster: int, records: list[foundation.Attribute]
    ) -> list[foundation.WriteAttributesStatusRecord]:
        failed = []
        for record in records:
            attribute = self.attributes.get((cluster, record.attrid))
            try:
                if attribute is None:
                    raise DeviceRefused(_STATUS.UNSUPPORTED_ATTRIBUTE)
                if attribute.write is None:
                    raise DeviceRefused(_STATUS.READ_ONLY)
                if self.failing:
                    raise DeviceRefused(_STATUS.HARDWARE_FAILURE)
                attribute.write(record.value.value)
            except DeviceRefused as exc:
                failed.append(foundation.WriteAttributesStatusRecord(exc.status, record.attrid))
        return failed or [foundation.WriteAttributesStatusRecord(_STATUS.SUCCESS)]

    def _configure(
        self, cluster: int, records: list[foundation.AttributeReportingConfig]
    ) -> list[foundation.ConfigureReportingResponseRecord]:
        failed = []
        for record in records:
            key = (cluster, record.attrid)
            if key not in self.attributes:
                failed.append(
                    foundation.ConfigureReportingResponseRecord(
                        _STATUS.UNSUPPORTED_ATTRIBUTE, record.direction, record.attrid
                    )
                )
            elif record.max_interval == 0xFFFF:  # the ZCL way to stop reporting
                self.reporting.pop(key, None)
            else:
                self.reporting[key] = Reporting(
                    record.min_interval, record.max_interval, float(record.reportable_change)
                )
        return failed or [foundation.ConfigureReportingResponseRecord(_STATUS.SUCCESS)]

    def _cluster_command(
        self, cluster: int, hdr: foundation.ZCLHeader, payload: bytes
    ) -> tuple[int | None, Any]:
        handler = self.commands.get((cluster, hdr.command_id))
        if handler is None:
            status = _STATUS.UNSUP_CLUSTER_COMMAND
        elif self.failing:
            status = _STATUS.HARDWARE_FAILURE
        else:
            schema = Cluster._registry[cluster].server_commands[hdr.command_id].schema
            args, _ = schema.deserialize(payload)
            try:
                handler(args)
                status = _STATUS.SUCCESS
            except DeviceRefused as exc:
                status = exc.status
        if status == _STATUS.SUCCESS and hdr.frame_control.disable_default_response:
            return None, None
        return _GENERAL.Default_Response, _default(hdr.command_id, status)

    def _typed(self, cluster: int, attrid: int, value: Any) -> foundation.TypeValue:
        definition = Cluster._registry[cluster].attributes[attrid]
        return foundation.TypeValue(definition.zcl_type, definition.type(value))

    def _next_tsn(self) -> int:
        self._tsn = (self._tsn + 1) % 256
        return self._tsn

    def _zcl_reply(self, cluster: int, tsn: int, command: int, status: Any) -> Frame:
        return self._zcl_frame(cluster, tsn, command, status)

    def _distinct(self, data: bytes) -> bytes:
        """`data`, or a variant zigpy treats the same, unlike any frame sent in the window.

        zigpy drops a frame identical to one it saw within PACKET_DEBOUNCE_WINDOW; fast request
        loops wrap the 8-bit ZCL sequence number well within it and would lose replies. The
        frame control's disable-default-response and reserved bits do not change what a reply
        means, so they pick one of 16 spellings the window has not seen yet.
        """
        now = self.clock()
        recent = self._recent
        while recent and next(iter(recent.values())) < now - DEBOUNCE_WINDOW:
            recent.pop(next(iter(recent)))
        candidate = data
        for variant in range(16):
            control = (data[0] & 0x0F) | ((variant & 1) ^ (data[0] >> 4 & 1)) << 4
            candidate = bytes([control | (variant >> 1) << 5]) + data[1:]
            if candidate not in recent:
                break
        recent.pop(candidate, None)
        recent[candidate] = now
        return candidate

    def _zcl_frame(self, cluster: int, tsn: int, command: int, body: Any) -> Frame:
        hdr = foundation.ZCLHeader.general(
            tsn, command, direction=foundation.Direction.Server_to_Client
        )
        schema = foundation.GENERAL_COMMANDS[_GENERAL(command)].schema
        if command == _GENERAL.Default_Response:
            encoded = body.serialize()
        else:
            (field_name,) = (f.name for f in schema.fields)
            encoded = schema(**{field_name: body}).serialize()
        data = self._distinct(hdr.serialize() + (encoded[:1] if self.garbled else encoded))
        return Frame(ENDPOINT, ENDPOINT, cluster, HA_PROFILE, data)


def _default(command: int, status: foundation.Status) -> foundation.DefaultResponse:
    return foundation.DefaultResponse(command_id=command, status=status)


def _differs(value: Any, last: Any, config: Reporting) -> bool:
    if isinstance(value, (int, float)) and isinstance(last, (int, float)):
        return abs(value - last) >= max(config.change, 1e-9)
    return bool(value != last)


_NODE_DESCRIPTOR = zdo_t.NodeDescriptor(
    logical_type=zdo_t.LogicalType.Router,
    complex_descriptor_available=0,
    user_descriptor_available=0,
    reserved=0,
    aps_flags=0,
    frequency_band=zdo_t.NodeDescriptor.FrequencyBand.Freq2400MHz,
    mac_capability_flags=zdo_t.NodeDescriptor.MACCapabilityFlags(0x8E),
    manufacturer_code=0x1234,
    maximum_buffer_size=82,
    maximum_incoming_transfer_size=128,
    server_mask=0,
    maximum_outgoing_transfer_size=128,
    descriptor_capability_field=zdo_t.NodeDescriptor.DescriptorCapability.NONE,
)
