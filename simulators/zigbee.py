"""ZigBee simulator: an XBee coordinator radio over TCP with simulated devices behind it.

`kedge simulate zigbee --port P` listens on 127.0.0.1:P and speaks the XBee API frame protocol
(API mode 2) a real XBee module speaks over its serial port, so the unmodified radio library
(zigpy-xbee, path `socket://127.0.0.1:P`) drives it. The emulated module answers local AT
commands from its register table, acknowledges explicit transmit requests (0x11) with transmit
status (0x8B) and delivers what the devices answer as explicit receive indications (0x91).

The network (PAN 0x1A62, channel 15) is already formed. Devices join when the coordinator
permits joining (AT NJ, or a ZDO Mgmt_Permit_Joining broadcast): each announces itself with ZDO
Device_annce and zigpy interviews it over ZDO and ZCL. See `simulators.zigbee_devices` for them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import struct
import time
from collections.abc import Callable

import zigpy.types as t

from simulators import xbee
from simulators.cli import run_simulator
from simulators.thermostat import Thermostat
from simulators.zigbee_devices import Frame, SimZigbeeDevice
from simulators.zigbee_products import LightDevice, ThermostatDevice

log = logging.getLogger("kedge.simulator.zigbee")

COORDINATOR_IEEE = "00:13:a2:00:41:6b:65:64"
THERMOSTAT_IEEE = "00:12:4b:00:0a:00:00:01"
LIGHT_IEEE = "00:12:4b:00:0a:00:00:02"
REPORT_TICK = 0.5  # seconds between checks for due attribute reports (ZCL intervals are whole s)
BROADCASTS = frozenset({0xFFFC, 0xFFFD, 0xFFFF})
PERMIT_JOINING = 0x0036

# frame types (Digi 90000976)
AT, QUEUED_AT, TX_EXPLICIT, REMOTE_AT, REGISTER_JOINING = 0x08, 0x09, 0x11, 0x17, 0x24
AT_RESPONSE, MODEM_STATUS, TX_STATUS, RX_EXPLICIT = 0x88, 0x8A, 0x8B, 0x91
REMOTE_AT_RESPONSE, REGISTRATION_STATUS = 0x97, 0xA4
TX_SUCCESS, TX_NETWORK_ACK_FAILURE, TX_ADDRESS_NOT_FOUND = 0x00, 0x21, 0x24
AT_OK, AT_INVALID_COMMAND, AT_INVALID_PARAMETER, AT_TX_FAILURE = 0, 2, 3, 4
COORDINATOR_STARTED = 0x06


def _eui64_wire(ieee: t.EUI64) -> bytes:
    """XBee sends 64-bit addresses most significant byte first."""
    return bytes(reversed(ieee.serialize()))


def _registers(ieee: t.EUI64) -> dict[str, tuple[int, int]]:
    """AT register -> (value, width in bytes): a formed network, coordinator, ZDO pass-through."""
    high, low = struct.unpack(">II", _eui64_wire(ieee))
    return {
        "AP": (2, 1), "AO": (3, 1), "MY": (0x0000, 2), "SH": (high, 4), "SL": (low, 4),
        "CE": (1, 1), "VR": (0x1013, 2), "HV": (0x1E42, 2), "OI": (0x1A62, 2),
        "ID": (0x6B656467655A4221, 8), "OP": (0x6B656467655A4221, 8), "CH": (0x0F, 1),
        "SC": (0x0010, 2), "AI": (0x00, 1), "EE": (1, 1), "EO": (0x02, 1), "ZS": (2, 1),
        "NJ": (0, 1), "SP": (0x20, 2), "SN": (1, 2), "KT": (0x012C, 2), "DB": (40, 1),
        "PL": (4, 1), "PP": (8, 1), "NP": (0x54, 2), "NR": (0, 1),
    }  # fmt: skip


ACTIONS = frozenset({"AC", "WR", "RE", "FR", "CN", "NK", "KY"})  # accepted, nothing to read back


class ZigbeeSimulator:
    """One emulated XBee radio (one host connection at a time) and its devices."""

    def __init__(
        self,
        port: int,
        host: str = "127.0.0.1",
        devices: list[SimZigbeeDevice] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host, self.port, self.clock = host, port, clock
        self.coordinator = t.EUI64.convert(COORDINATOR_IEEE)
        self.devices = devices or default_devices(clock)
        self.registers = _registers(self.coordinator)
        self.permit_until = float("-inf")
        self.received = 0  # explicit transmit requests, for tests and benchmarks
        self._server: asyncio.Server | None = None
        self._connection: RadioConnection | None = None
        self._reporter: asyncio.Task[None] | None = None
        self._pending: list[bytes] = []  # frames not answering the current one

    def device(self, ieee: str) -> SimZigbeeDevice:
        wanted = t.EUI64.convert(ieee)
        return next(d for d in self.devices if d.ieee == wanted)

    @property
    def connected(self) -> bool:
        return self._connection is not None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: RadioConnection(self), self.host, self.port, reuse_address=True
        )
        self._reporter = asyncio.create_task(self._report_loop())

    async def stop(self) -> None:
        if self._reporter is not None:
            self._reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reporter
        if self._connection is not None:
            self._connection.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def attach(self, connection: RadioConnection) -> bool:
        """The radio has one serial port: a second host connection is refused."""
        if self._connection is not None:
            return False
        self._connection = connection
        return True

    def detach(self, connection: RadioConnection) -> None:
        if self._connection is connection:
            self._connection = None

    # frames from the host -----------------------------------------------------------------------

    def handle(self, frame: bytes) -> list[bytes]:
        """API frames answering one API frame from the host."""
        kind = frame[0] if frame else None
        if kind in (AT, QUEUED_AT) and len(frame) >= 4:
            return [self._at(frame[1], frame[2:4].decode("latin-1"), frame[4:])]
        if kind == TX_EXPLICIT and len(frame) >= 20:
            return self._transmit(frame)
        if kind == REMOTE_AT and len(frame) >= 15:
            # remote AT commands reach only other XBee modules; the simulated devices are not
            return [bytes([REMOTE_AT_RESPONSE, frame[1]]) + frame[2:12] + frame[13:15] + b"\x04"]
        if kind == REGISTER_JOINING and len(frame) >= 2:
            return [bytes([REGISTRATION_STATUS, frame[1], 0])]
        log.warning("xbee: ignored API frame %s", frame[:1].hex() or "(empty)")
        return []

    def _at(self, frame_id: int, name: str, parameter: bytes) -> bytes:
        head = bytes([AT_RESPONSE, frame_id]) + name.encode("latin-1")
        if name in ACTIONS:
            if name == "WR":  # settings written: the module restarts its network
                self._pending.append(self._modem_status(COORDINATOR_STARTED))
            if name == "AC":
                self._apply_permit()
            return head + bytes([AT_OK])
        if name not in self.registers:
            return head + bytes([AT_INVALID_COMMAND])
        value, width = self.registers[name]
        if parameter:
            if len(parameter) > width:
                return head + bytes([AT_INVALID_PARAMETER])
            self.registers[name] = (int.from_bytes(parameter, "big"), width)
            return head + bytes([AT_OK])
        return head + bytes([AT_OK]) + value.to_bytes(width, "big")

    def _apply_permit(self) -> None:
        seconds = self.registers["NJ"][0]
        self.permit(0 if seconds == 0 else min(seconds, 254))

    def permit(self, seconds: float) -> None:
        """Open joining for `seconds`; waiting devices join (announce) right away."""
        self.permit_until = self.clock() + seconds if seconds > 0 else float("-inf")
        if seconds > 0:
            for device in self.devices:
                if not device.joined and device.online:
                    device.joined = True
                    self._pending.append(self._indication(device, device.announce()))

    def _transmit(self, frame: bytes) -> list[bytes]:
        self.received += 1
        frame_id = frame[1]
        nwk = int.from_bytes(frame[10:12], "big")
        _src_ep, dst_ep = frame[12], frame[13]
        cluster, profile = struct.unpack(">HH", frame[14:18])
        data = frame[20:]
        if nwk in BROADCASTS:
            if dst_ep == 0 and cluster == PERMIT_JOINING and len(data) >= 2:
                self.permit(data[1])
            return [self._tx_status(frame_id, nwk, TX_SUCCESS)]
        device = self._device_at(frame[2:10], nwk)
        if device is None:
            return [self._tx_status(frame_id, nwk, TX_ADDRESS_NOT_FOUND)]
        if not device.online or not device.joined:
            return [self._tx_status(frame_id, nwk, TX_NETWORK_ACK_FAILURE)]
        try:
            replies = device.handle(profile, cluster, dst_ep, data)
        except Exception as exc:  # noqa: BLE001 - a frame the device cannot parse: no answer
            log.warning("zigbee device %s: undecodable frame: %r", device.ieee, exc)
            replies = []
        status = self._tx_status(frame_id, device.nwk, TX_SUCCESS)
        return [status, *(self._indication(device, reply) for reply in replies)]

    def _device_at(self, ieee_wire: bytes, nwk: int) -> SimZigbeeDevice | None:
        for device in self.devices:
            if device.nwk == nwk or _eui64_wire(device.ieee) == ieee_wire:
                return device
        return None

    # frames to the host -------------------------------------------------------------------------

    def drain(self) -> list[bytes]:
        """Frames produced as side effects (announcements, modem status) since the last call."""
        frames, self._pending = self._pending, []
        return frames

    def _tx_status(self, frame_id: int, nwk: int, status: int) -> bytes:
        return bytes([TX_STATUS, frame_id]) + nwk.to_bytes(2, "big") + bytes([0, status, 0])

    def _modem_status(self, status: int) -> bytes:
        return bytes([MODEM_STATUS, status])

    def _indication(self, device: SimZigbeeDevice, frame: Frame) -> bytes:
        return (
            bytes([RX_EXPLICIT])
            + _eui64_wire(device.ieee)
            + device.nwk.to_bytes(2, "big")
            + bytes([frame.src_ep, frame.dst_ep])
            + struct.pack(">HH", frame.cluster, frame.profile)
            + b"\x01"  # packet acknowledged
            + frame.data
        )

    async def _report_loop(self) -> None:
        while True:
            await asyncio.sleep(REPORT_TICK)  # a device's own timer, not synchronisation
            connection = self._connection
            if connection is None:
                continue
            for device in self.devices:
                try:
                    reports = device.due_reports()
                except Exception as exc:  # noqa: BLE001 - one bad value must not stop reporting
                    log.warning("zigbee device %s: report failed: %r", device.ieee, exc)
                    continue
                for report in reports:
                    connection.send(self._indication(device, report))


class RadioConnection(asyncio.Protocol):
    """The host's serial line: API frames in, API frames out."""

    def __init__(self, simulator: ZigbeeSimulator) -> None:
        self.simulator = simulator
        self.decoder = xbee.FrameDecoder()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if not self.simulator.attach(self):
            transport.close()
            return
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.simulator.detach(self)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        if self.transport is None:
            return
        for frame in self.decoder.feed(data):
            for reply in self.simulator.handle(frame):
                self.send(reply)
            for extra in self.simulator.drain():
                self.send(extra)

    def send(self, frame: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(xbee.encode(frame))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def default_devices(clock: Callable[[], float] = time.monotonic) -> list[SimZigbeeDevice]:
    return [
        ThermostatDevice(t.EUI64.convert(THERMOSTAT_IEEE), 0x1001, Thermostat(), clock),
        LightDevice(t.EUI64.convert(LIGHT_IEEE), 0x1002, clock),
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=19003, help="TCP port of the emulated radio")
    parser.add_argument(
        "--joined",
        action="store_true",
        help="devices start joined (a network that existed before this run)",
    )


async def serve_from(args: argparse.Namespace) -> None:
    simulator = ZigbeeSimulator(args.port, args.host)
    for device in simulator.devices:
        device.joined = args.joined
    await simulator.start()
    print(  # noqa: T201 - the user's terminal
        f"ZigBee (XBee radio) on socket://{args.host}:{args.port}: "
        f"thermostat {THERMOSTAT_IEEE}, light {LIGHT_IEEE}",
        flush=True,
    )
    try:
        await asyncio.Event().wait()
    finally:
        await simulator.stop()


def main(argv: list[str] | None = None) -> int:
    return run_simulator("python -m simulators.zigbee", __doc__, add_arguments, serve_from, argv)


if __name__ == "__main__":
    raise SystemExit(main())
