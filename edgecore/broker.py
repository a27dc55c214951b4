"""Supervise a local mosquitto: loopback-only config and password file in the state dir.

Pure-Python brokers cannot serve KubeEdge's `$hw/...` topics (amqtt refuses `$` topics, rumqttd
drops them), so the single-machine default is the OS's mosquitto, restarted if it dies. Every
client has a role (`edgecore.identities`: edgecore, app, mapper-<protocol>) with its own password
and ACL; edgecore's URL is `<state>/broker/mqtt-url`, each role's `<state>/broker/<role>.url`
(all 0600).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import os
import shutil
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path

from edgecore.identities import EDGECORE, Identities
from kedge.backoff import Backoff
from kedge.errors import TemporaryError
from kedge.mqtt import MqttSettings
from kedge.process import die_with_parent, end_stale, record_pids, write_private

log = logging.getLogger("kedge.broker")
MESSAGE_SIZE_LIMIT = 8 * 1024 * 1024  # the broker drops larger publishes (edgecore's own too)
PID_FILE = "mosquitto.pid"
READY_TIMEOUT = 10.0


class BrokerError(TemporaryError):
    """mosquitto is missing or cannot start; the message says what to do."""


def find_mosquitto() -> str:
    found = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)),
        None,
    )
    if not found:
        raise BrokerError(
            "mosquitto is not installed: install it from the OS packages "
            "(apt-get install mosquitto) or pass --mqtt URL"
        )
    return found


class LocalBroker:
    """A mosquitto child process on 127.0.0.1:`port`, restarted when it exits unexpectedly."""

    def __init__(self, state_dir: Path, port: int, node: str, anonymous: bool = False) -> None:
        """`anonymous`: also accept clients without credentials (loopback only, as KubeEdge's
        edge broker does), confined by the ACL's anonymous lines."""
        self.dir = state_dir / "broker"
        self.port = port
        self.node = node
        self.restarts = 0
        self._process: asyncio.subprocess.Process | None = None
        self._stopping = False
        self._devices: Mapping[str, Sequence[str]] = {}
        self.anonymous = anonymous
        self.identities = Identities(self.dir, node, port, anonymous)

    def prepare(self) -> MqttSettings:
        """Write the config, password and ACL files (keeping the roles' passwords) and return
        edgecore's own settings."""
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        self.identities.write({})
        write_private(
            self.dir / "mosquitto.conf",
            "\n".join(
                [
                    f"listener {self.port} 127.0.0.1",
                    f"allow_anonymous {'true' if self.anonymous else 'false'}",
                    f"password_file {self.dir / 'passwd'}",
                    f"acl_file {self.dir / 'acl'}",
                    f"message_size_limit {MESSAGE_SIZE_LIMIT}",
                    "persistence false",
                    f"user {getpass.getuser()}",
                    "log_dest stderr",
                    "log_type error",
                    "log_type warning",
                    "max_queued_messages 100000",
                    "",
                ]
            ),
        )
        settings = self.identities.settings(EDGECORE)
        write_private(self.dir / "mqtt-url", settings.url() + "\n")
        return settings

    def identity(self, role: str) -> MqttSettings:
        """A role's settings for a client of this broker (a pod), made and loaded if new."""
        settings = self.identities.settings(role)
        self.refresh(self._devices)
        return settings

    def refresh(self, devices: Mapping[str, Sequence[str]]) -> None:
        """Rewrite the ACL for the node's devices ({protocol: ids}); mosquitto reloads on HUP."""
        self._devices = devices
        if self.identities.write(devices) and self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                self._process.send_signal(signal.SIGHUP)

    def _argv(self) -> list[str]:
        return [find_mosquitto(), "-c", str(self.dir / "mosquitto.conf")]

    async def _spawn(self) -> asyncio.subprocess.Process:
        """mosquitto, dying with edgecore; its pid recorded so a later start on this state dir
        can end one that outlived an edgecore it did not die with."""
        with (self.dir / "mosquitto.log").open("ab") as log_file:
            process = await asyncio.create_subprocess_exec(
                *self._argv(),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=log_file,
                preexec_fn=die_with_parent(),
            )
        record_pids(self.dir / PID_FILE, {"mosquitto": (process.pid, self._argv())})
        return process

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            lines = (self.dir / "mosquitto.log").read_text(errors="replace").splitlines()
            return " | ".join(lines[-3:])
        return ""

    async def start(self) -> None:
        """Start mosquitto and wait until it accepts connections, first ending a mosquitto of
        this state dir that a killed run left holding the port."""
        find_mosquitto()
        for pid in end_stale(self.dir / PID_FILE):
            log.warning("ended a stale mosquitto of this state dir",
                        extra={"node": self.node, "pid": pid})  # fmt: skip
        self._process = await self._spawn()
        await self._wait_ready(self._process)
        log.info(
            "mosquitto listening",
            extra={"node": self.node, "port": self.port, "pid": self._process.pid},
        )

    async def _wait_ready(self, process: asyncio.subprocess.Process) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_TIMEOUT
        while loop.time() < deadline:
            if process.returncode is not None:
                raise BrokerError(f"mosquitto exited with {process.returncode}: {self._log_tail()}")
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            await asyncio.sleep(0.02)
        raise BrokerError(
            f"mosquitto did not listen on 127.0.0.1:{self.port} within {READY_TIMEOUT:.0f}s"
        )

    async def supervise(self) -> None:
        """Restart mosquitto whenever it exits, with a capped backoff, until `stop()`."""
        backoff = Backoff(0.1, 5.0)
        while not self._stopping:
            assert self._process is not None
            code = await self._process.wait()
            if self._stopping:
                return
            self.restarts += 1
            log.warning(
                "mosquitto exited; restarting",
                extra={"node": self.node, "code": code, "restarts": self.restarts},
            )
            await backoff.pause()
            try:
                self._process = await self._spawn()
                await self._wait_ready(self._process)
                backoff.reset()
            except BrokerError as exc:
                log.error("mosquitto restart failed: %s", exc, extra={"node": self.node})

    async def stop(self) -> None:
        self._stopping = True
        process = self._process
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            process.kill()
            await process.wait()
        (self.dir / PID_FILE).unlink(missing_ok=True)
