"""Real parts for tests: a mosquitto on a free loopback port, edgecore processes, an MQTT client.

Every wait is on a condition with a timeout; every process started here is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from pymodbus.client import AsyncModbusTcpClient

from edgecore.broker import find_mosquitto

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "crds" / "samples"


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port free now, and never one this process handed out before (the kernel may offer
    the same port twice in a row, and a cloudcore given it twice cannot start)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.02)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def fresh(process: subprocess.Popen[bytes] | None) -> None:
    """Refuse to start a process over one still running: its Popen would be dropped while
    alive and turn into a ResourceWarning in whichever later test collects it."""
    if process is not None and process.poll() is None:
        raise RuntimeError(f"process {process.pid} is still running")


def ready_or_ended(process: subprocess.Popen[bytes], ready: Callable[[], Any], timeout: float,
                   what: str) -> None:  # fmt: skip
    """`wait_for(ready)`; a process that never got ready is killed before the error goes up
    (the caller never got the object that could have stopped it)."""
    try:
        wait_for(ready, timeout=timeout, what=what)
    except BaseException:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        raise


async def wait_until(
    predicate: Callable[[], Any], within: float = 10.0, what: str = "condition"
) -> Any:
    """`wait_for` for code on the event loop: the loop keeps running while it polls."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        await asyncio.sleep(0.01)
    raise TimeoutError(f"timed out after {within}s waiting for {what}")


async def await_until(
    check: Callable[[], Awaitable[Any]], within: float = 30.0, what: str = "condition"
) -> Any:
    """`wait_until` for a check that is itself a coroutine (a gRPC call, say)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.05)
    raise TimeoutError(f"timed out after {within}s waiting for {what}")


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


@dataclass
class Mosquitto:
    """An anonymous, loopback-only mosquitto for tests that bring their own broker."""

    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Mosquitto:
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\nuser root\n"
        )
        fresh(self.process)
        self.process = subprocess.Popen(
            [find_mosquitto(), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        ready_or_ended(self.process, lambda: port_open(self.port), 10, "mosquitto to listen")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(5)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"


class MqttProbe:
    """A plain paho-mqtt client (as a third-party mapper would use) that records messages."""

    def __init__(self, port: int, username: str | None = None, password: str | None = None):
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.seen: list[tuple[str, bytes]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{uuid.uuid4()}")
        if username:
            self.client.username_pw_set(username, password)
        self.client.on_message = lambda _c, _u, m: self.messages.put((m.topic, bytes(m.payload)))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        wait_for(self.client.is_connected, what="probe to connect")

    def subscribe(self, topic: str) -> None:
        done = queue.Queue[int]()
        self.client.on_subscribe = lambda *_a: done.put(1)
        self.client.subscribe(topic)
        done.get(timeout=5)

    def publish(self, topic: str, payload: bytes | str | dict[str, Any]) -> None:
        body = json.dumps(payload) if isinstance(payload, dict) else payload
        self.client.publish(topic, body).wait_for_publish(5)

    def expect(
        self,
        topic: str,
        match: Callable[[dict[str, Any]], bool] = lambda _b: True,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """The first message on `topic` whose JSON body satisfies `match`."""
        for seen_topic, payload in self.seen:
            if seen_topic == topic and match(json.loads(payload)):
                self.seen.remove((seen_topic, payload))
                return dict(json.loads(payload))
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                seen_topic, payload = self.messages.get(timeout=left)
            except queue.Empty:
                break
            if seen_topic == topic and match(json.loads(payload)):
                return dict(json.loads(payload))
            self.seen.append((seen_topic, payload))
        raise TimeoutError(f"no matching message on {topic} within {timeout}s")

    def request(
        self,
        topic: str,
        payload: bytes | str | dict[str, Any],
        reply_topic: str | None = None,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """Publish with a fresh event_id (for dict payloads) and wait for the matching reply."""
        reply_topic = reply_topic or topic + "/result"
        if isinstance(payload, dict):
            event_id = str(uuid.uuid4())
            payload = {**payload, "event_id": event_id}
            self.publish(topic, payload)
            return self.expect(reply_topic, lambda b: b.get("event_id") == event_id, timeout)
        self.publish(topic, payload)
        return self.expect(reply_topic, timeout=timeout)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@dataclass
class EdgeProcess:
    """`python -m edgecore` as a real child process, stopped by `stop()` or `kill()`."""

    state_dir: Path
    node: str = "edge-node-1"
    mqtt_url: str | None = None
    broker_port: int | None = None
    devices: list[Path] = field(default_factory=list)
    http_port: int = field(default_factory=free_port)
    extra: list[str] = field(default_factory=list)  # more flags, e.g. --cloud
    process: subprocess.Popen[bytes] | None = None

    def args(self) -> list[str]:
        argv = [
            sys.executable,
            "-m",
            "edgecore",
            "--node",
            self.node,
            "--state-dir",
            str(self.state_dir),
            "--http",
            f"127.0.0.1:{self.http_port}",
        ]
        if self.mqtt_url:
            argv += ["--mqtt", self.mqtt_url]
        else:
            argv += ["--broker", f"local:{self.broker_port or free_port()}"]
        if self.devices:
            argv += ["--devices", *map(str, self.devices)]
        return argv + self.extra

    def start(self, wait: bool = True) -> EdgeProcess:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        fresh(self.process)
        with (self.state_dir / "edgecore.log").open("ab") as log:
            self.process = subprocess.Popen(
                self.args(),
                stdout=log,
                stderr=log,
                cwd=ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        if wait:
            ready_or_ended(self.process, self.healthy, 30, "edgecore /healthz")
        return self

    def run_to_exit(self, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.args(), capture_output=True, text=True, timeout=timeout, cwd=ROOT
        )

    def healthy(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"edgecore exited with {self.process.returncode}: {self.log()}")
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200
        return False

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.base + path, timeout=5)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.put(self.base + path, timeout=5, **kwargs)

    def twin(self, device: str, prop: str) -> dict[str, Any]:
        response = self.get(f"/v1/devices/{device}/twin/{prop}")
        response.raise_for_status()
        return dict(response.json())

    def log(self) -> str:
        path = self.state_dir / "edgecore.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
            raise

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(5)

    def broker_credentials(self) -> tuple[int, str, str]:
        url = (self.state_dir / "broker" / "mqtt-url").read_text().strip()
        auth, _, hostport = url.removeprefix("mqtt://").rpartition("@")
        user, _, password = auth.partition(":")
        return int(hostport.rsplit(":", 1)[1]), user, password


@contextlib.contextmanager
def running(edge: EdgeProcess) -> Iterator[EdgeProcess]:
    edge.start()
    try:
        yield edge
    finally:
        edge.stop()


@contextlib.asynccontextmanager
async def mapper_running(protocol: str, broker_url: str, node: str = "n1") -> AsyncIterator[Any]:
    """A mapper in this test's event loop (it talks to the broker like any other), then stopped."""
    import asyncio

    from kedge.mqtt import parse_mqtt_url
    from mappers.registry import driver_factory
    from mappers.runtime import Mapper, MapperSettings

    mapper = Mapper(
        MapperSettings(protocol, node, parse_mqtt_url(broker_url)), driver_factory(protocol)
    )
    task = asyncio.create_task(mapper.run())
    try:
        yield mapper
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class Proc:
    """A child process logging to a file; always stopped."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.args, self.log, self.env = args, log, env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        fresh(self.process)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.args, stdout=out, stderr=out, cwd=ROOT, env=self.env
            )
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def modbus_register(port: int, coil: bool = False) -> int | None:
    """Holding register 0 (or coil 0) of the Modbus device on `port`, read by a plain client;
    None while it does not answer."""

    async def read() -> int | None:
        client = AsyncModbusTcpClient("127.0.0.1", port=port)
        try:
            if not await client.connect():
                return None
            if coil:
                return int((await client.read_coils(0, count=1, device_id=1)).bits[0])
            return int((await client.read_holding_registers(0, count=1, device_id=1)).registers[0])
        finally:
            client.close()

    return asyncio.run(read())
