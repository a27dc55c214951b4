"""One zigpy ControllerApplication per radio, shared by every device on its network.

Protocol configData (the same on every device of one network):
    radio       xbee | ezsp | znp | deconz | zigate (the zigpy radio library to drive)
    path        serial port, or socket://host:port for a radio behind a TCP bridge
    baudrate    optional; flowControl: optional, "hardware" or "software"
    database    file keeping the network's devices across restarts (zigpy's SQLite database);
                default $XDG_STATE_HOME/kedge/zigbee/<radio>-<path>.db

The radio is started on first use, forming a network if it has none. When the connection to the
radio is lost the next request starts it again (or fails with DeviceUnreachable while it stays
away); `generation` counts the starts, so drivers know to configure reporting again.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zigpy.application
import zigpy.exceptions
import zigpy.types as t

from mappers.driver import DeviceUnreachable, VisitorError

log = logging.getLogger("kedge.mapper.zigbee")

RADIOS = {
    "xbee": "zigpy_xbee.zigbee.application",
    "ezsp": "bellows.zigbee.application",
    "znp": "zigpy_znp.zigbee.application",
    "deconz": "zigpy_deconz.zigbee.application",
    "zigate": "zigpy_zigate.zigbee.application",
}
START_TIMEOUT = 30.0  # seconds for a radio to connect and start its network


def _state_home() -> Path:
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")


@dataclass(frozen=True, slots=True)
class Radio:
    radio: str
    path: str
    baudrate: int | None = None
    flow_control: str | None = None
    database: str = ""

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Radio:
        radio, path = config.get("radio"), config.get("path")
        if radio not in RADIOS:
            raise VisitorError(f"radio: {radio!r} is not one of {', '.join(RADIOS)}")
        if not isinstance(path, str) or not path:
            raise VisitorError("path: the radio's serial port or socket://host:port is required")
        baudrate = config.get("baudrate")
        if baudrate is not None and (isinstance(baudrate, bool) or not isinstance(baudrate, int)):
            raise VisitorError(f"baudrate: {baudrate!r} is not an integer")
        flow = config.get("flowControl")
        if flow not in (None, "hardware", "software"):
            raise VisitorError(f"flowControl: {flow!r} is not hardware or software")
        database = config.get("database")
        if database is None:
            slug = re.sub(r"[^A-Za-z0-9]+", "-", path).strip("-")
            database = str(_state_home() / "kedge" / "zigbee" / f"{radio}-{slug}.db")
        elif not isinstance(database, str) or not database:
            raise VisitorError(f"database: {database!r} is not a file path")
        return cls(str(radio), path, baudrate, flow, database)

    def app_config(self) -> dict[str, Any]:
        device: dict[str, Any] = {"path": self.path}
        if self.baudrate is not None:
            device["baudrate"] = self.baudrate
        if self.flow_control is not None:
            device["flow_control"] = self.flow_control
        return {
            "device": device,
            "database_path": self.database,
            "topology_scan_enabled": False,  # scans flood small meshes with ZDO requests
            "ota": {"enabled": False},  # firmware updates are not the mapper's business
        }


@dataclass
class Network:
    radio: Radio
    users: int = 0
    generation: int = 0
    app: zigpy.application.ControllerApplication | None = None
    permit_until: float = 0.0
    permit_window: int = 0  # the join window held open (renewed), 0 when closed on purpose
    permit_generation: int = 0  # the radio start the window was opened on
    _lost: Exception | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def connection_lost(
        self, app: zigpy.application.ControllerApplication, exc: Exception | None
    ) -> None:
        """The radio's serial line is gone (ignored for an application already shut down)."""
        if app is self.app:
            log.warning("zigbee radio %s lost: %s", self.radio.path, exc)
            self._lost = exc or ConnectionError("connection closed")

    async def application(self) -> zigpy.application.ControllerApplication:
        async with self._lock:
            if self._lost is not None:
                self._lost = None
                await self._shutdown()
            if self.app is None:
                self.app = await self._start()
                self.generation += 1
            return self.app

    async def _start(self) -> zigpy.application.ControllerApplication:
        module = importlib.import_module(RADIOS[self.radio.radio])
        Path(self.radio.database).parent.mkdir(parents=True, exist_ok=True)
        app = await module.ControllerApplication.new(self.radio.app_config(), start_radio=False)
        try:
            async with asyncio.timeout(START_TIMEOUT):
                await app.startup(auto_form=True)
        except Exception as exc:  # noqa: BLE001 - radio libraries fail in their own ways
            await self._close(app)  # zigpy leaves its database open after a failed start
            raise DeviceUnreachable(
                f"cannot start {self.radio.radio} radio at {self.radio.path}: {exc!r}"
            ) from exc
        except BaseException:
            await self._close(app)
            raise
        app.add_listener(_LostWatch(self, app))
        log.info("zigbee network up on %s: %d devices known", self.radio.path, len(app.devices) - 1)
        return app

    @staticmethod
    async def _close(app: zigpy.application.ControllerApplication) -> None:
        with contextlib.suppress(Exception):  # the radio may be gone mid-shutdown
            await app.shutdown()

    async def device(self, ieee: t.EUI64) -> Any:
        app = await self.application()
        try:
            return app.get_device(ieee=ieee)
        except KeyError:
            raise DeviceUnreachable(
                f"{ieee} has not joined the network on {self.radio.path}; permit joining "
                "(a property with network: permitJoin) and put the device in pairing mode"
            ) from None

    async def permit(self, seconds: int) -> None:
        """Hold joining open in windows of `seconds` (renewed by `held_open`), or close it."""
        app = await self.application()
        try:
            await app.permit(seconds)
        except (zigpy.exceptions.ZigbeeException, TimeoutError) as exc:
            raise DeviceUnreachable(f"permit joining failed: {exc!r}") from exc
        self.permit_until = time.monotonic() + seconds
        self.permit_window, self.permit_generation = seconds, self.generation

    def permit_remaining(self) -> int:
        if self.permit_generation != self.generation:
            return 0  # a restarted radio forgot the window
        return max(0, round(self.permit_until - time.monotonic()))

    async def held_open(self) -> int:
        """The join window held open (0: closed), renewed once half of it has passed, so a
        desired window and the reported one meet instead of the reading counting down."""
        await self.application()
        window = self.permit_window
        if window and self.permit_remaining() < window / 2:
            await self.permit(window)
        return window if self.permit_remaining() else 0

    async def _shutdown(self) -> None:
        app, self.app = self.app, None
        if app is not None:
            await self._close(app)


@dataclass(frozen=True, slots=True)
class _LostWatch:
    """zigpy listener: tells the network which application lost its radio."""

    network: Network
    app: zigpy.application.ControllerApplication

    def connection_lost(self, exc: Exception | None) -> None:
        self.network.connection_lost(self.app, exc)


class NetworkPool:
    """Networks by radio path, shared while any device uses them."""

    def __init__(self) -> None:
        self._networks: dict[str, Network] = {}

    def acquire(self, radio: Radio) -> Network:
        network = self._networks.get(radio.path)
        if network is None:
            network = self._networks[radio.path] = Network(radio)
        elif network.radio != radio:
            raise VisitorError(
                f"radio at {radio.path} is configured differently by another device "
                f"({network.radio.radio}, database {network.radio.database})"
            )
        network.users += 1
        return network

    async def release(self, network: Network) -> None:
        network.users -= 1
        if network.users <= 0:
            self._networks.pop(network.radio.path, None)
            async with network._lock:
                await network._shutdown()
