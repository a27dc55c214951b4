"""A settled `kedge up` (every sample device reporting, nothing changing) over 60 s: CPU of the
whole process tree (as % of one core, per process too), MQTT messages/s on the edge broker and
SQLite twin writes/s, next to what the devices' report cycles ask for (the baseline, read from
the same run's merged specs). Then an unreachable desired value (a set-point the device rounds)
for 60 s: its deltas, next to the retry schedule's 1 s doubling to 5 min.

Targets (issue 13): under 5 % of one core; broker traffic within 2x of the report cycles; an
unreachable value at most one delta per retry interval.
"""

from __future__ import annotations

import collections
import json
import queue
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import psutil
from paho.mqtt.enums import CallbackAPIVersion

from bench.up import reporting, role
from devicetwin.spec import mapper_spec
from harness.support import ROOT, free_port, wait_for

WINDOW = 60.0
SETTLE = 20.0  # seconds after every device reports, before measuring
UNREACHABLE = ("default/ble-thermostat-1", "setpoint", "22.505")  # 0.01 steps: rounded


class Broker:
    """A plain paho client on the edge broker counting every message published there."""

    def __init__(self, url: str) -> None:
        auth, _, hostport = url.removeprefix("mqtt://").rpartition("@")
        user, _, password = auth.partition(":")
        self.counts: collections.Counter[str] = collections.Counter()
        self.seen: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{uuid.uuid4()}")
        self.client.username_pw_set(user, password)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", int(hostport.rsplit(":", 1)[1]))
        self.client.loop_start()
        wait_for(self.client.is_connected, what="the bench client on the broker")
        self.client.subscribe([("$hw/#", 0), ("#", 0)])

    def _on_message(self, _c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        parts = message.topic.split("/")
        kind = "/".join(parts[5:]) if message.topic.startswith("$hw/events/device/") else "other"
        self.counts[kind] += 1
        self.seen.put((message.topic, bytes(message.payload)))

    def request(self, topic: str, body: dict[str, object], reply: str) -> dict[str, object]:
        event = str(uuid.uuid4())
        self.client.publish(topic, json.dumps({**body, "event_id": event}))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            got, payload = self.seen.get(timeout=deadline - time.monotonic())
            if got == reply and json.loads(payload).get("event_id") == event:
                return dict(json.loads(payload))
        raise TimeoutError(reply)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def required_reports(store: Path) -> float:
    """Reports per second the specs ask for: per property, one per max(collect, report) cycle.
    The merged specs are read from the edge's store (membership answers carry them only to
    each protocol's own mappers)."""
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        specs = [mapper_spec(json.loads(row[0] or "{}"))
                 for row in db.execute("SELECT spec FROM device")]  # fmt: skip
    rate = 0.0
    for spec in specs:
        for prop in spec.get("properties") or []:
            if prop.get("reportToCloud", True) and prop["type"] != "stream":
                rate += 1000 / max(prop["collectCycle"], prop["reportCycle"])
    return rate


def cpu_seconds(processes: list[psutil.Process]) -> dict[int, float]:
    out = {}
    for process in processes:
        try:
            times = process.cpu_times()
            out[process.pid] = times.user + times.system
        except psutil.Error:
            out[process.pid] = 0.0
    return out


def store_rows(http: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{http}/metrics", timeout=5).text
    found = re.search(r"^kedge_twin_store_rows (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def measure(up: subprocess.Popen[bytes], broker: Broker, http: int, store: Path) -> None:
    processes = [psutil.Process(up.pid), *psutil.Process(up.pid).children(recursive=True)]
    broker.counts.clear()
    rows, before = store_rows(http), cpu_seconds(processes)
    time.sleep(WINDOW)  # the measurement window
    after, rows = cpu_seconds(processes), store_rows(http) - rows
    messages = sum(broker.counts.values())
    print(f"settled kedge up over {WINDOW:.0f} s ({len(processes)} processes):")
    total = 0.0
    for process in processes:
        share = (after[process.pid] - before[process.pid]) / WINDOW * 100
        total += share
        print(f"  {share:5.2f} %  {role(process)}")
    needed = required_reports(store)
    print(f"  whole tree: {total:.2f} % of one core (target: under 5 %)")
    print(
        f"  edge broker: {messages / WINDOW:.1f} messages/s "
        f"({', '.join(f'{k}: {v / WINDOW:.1f}' for k, v in broker.counts.most_common())})"
    )
    print(
        f"  report cycles ask for {needed:.1f} reports/s: broker at "
        f"{messages / WINDOW / needed:.2f}x (target: within 2x)"
    )
    print(f"  SQLite twin writes: {rows / WINDOW:.1f} rows/s, {rows / WINDOW / needed:.2f}x the "
          "report cycles")  # fmt: skip


def unreachable(broker: Broker, http: int) -> None:
    device, prop, value = UNREACHABLE
    broker.counts.clear()
    put = httpx.put(f"http://127.0.0.1:{http}/v1/devices/{device}/twin/{prop}/desired",
                    json={"value": value}, timeout=5)  # fmt: skip
    put.raise_for_status()
    started = time.monotonic()
    time.sleep(WINDOW)  # the measurement window
    deltas = broker.counts["twin/update/delta"]
    twin = httpx.get(f"http://127.0.0.1:{http}/v1/devices/{device}/twin/{prop}", timeout=5).json()
    schedule, at, step = 0, 0.0, 1.0
    while at <= time.monotonic() - started:
        schedule, at, step = schedule + 1, at + step, min(step * 2, 300)
    print(
        f"unreachable desired {device} {prop}={value} for {WINDOW:.0f} s: {deltas} deltas "
        f"(the retry schedule allows {schedule}); the edge says: {twin['reason']!r}"
    )


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="kedge-idle-") as tmp:
        state, http = Path(tmp) / "state", free_port()
        argv = [sys.executable, "-m", "kedge", "up", "--state-dir", str(state),
                "--http-port", str(http), "--mqtt-port", str(free_port()),
                "--api-port", str(free_port()), "--cloud-port", str(free_port()),
                "--join-port", str(free_port()), "--stream-port", str(free_port())]  # fmt: skip
        up = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        broker = None
        try:
            wait_for(lambda: reporting(http), timeout=120, what="four devices reporting")
            time.sleep(SETTLE)  # let start-up transients (joins, first writes) pass
            broker = Broker((state / "edge" / "broker" / "mqtt-url").read_text().strip())
            measure(up, broker, http, state / "edge" / "edgecore.db")
            unreachable(broker, http)
        finally:
            if broker is not None:
                broker.close()
            up.send_signal(signal.SIGINT)
            up.wait(60)


if __name__ == "__main__":
    main()
