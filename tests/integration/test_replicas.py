"""Three cloudcore replicas against one API server, each edge node with its own broker, Modbus
simulator and mapper: nodes spread over the replicas; one replica killed with -9 while devices
change loses nothing: its node moves to another replica, every change reaches its device once
and in order, every reading reaches the DeviceStatus, the leader Lease moves."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from edgecore.hub import preference
from harness.apiserver import ApiServerProcess
from harness.cloud import CloudProcess
from harness.support import (
    SAMPLES,
    EdgeProcess,
    Mosquitto,
    MqttProbe,
    Proc,
    free_port,
    modbus_register,
    port_open,
    wait_for,
)

FLAGS = ("--node-lease-duration", "8", "--workload-controllers")
POD = """
apiVersion: v1
kind: Pod
metadata: {name: placed, namespace: default}
spec:
  nodeSelector: {kubernetes.io/hostname: NODE}
  containers: [{name: c, image: busybox, command: [sleep, "300"]}]
"""


@dataclass
class Site:
    """One edge node: its broker, simulator, edgecore, mapper and a probe on its deltas."""

    node: str
    device: str
    port: int
    broker: Mosquitto
    edge: EdgeProcess
    probe: MqttProbe
    procs: list[Proc] = field(default_factory=list)


@dataclass
class Fleet:
    apiserver: ApiServerProcess
    replicas: list[CloudProcess]
    sites: list[Site]


def _names() -> list[str]:
    """Three node names that start on replicas 0, 1 and 2 (an edge starts at the first of its
    preference), so the nodes spread over the replicas."""
    found: dict[int, str] = {}
    for i in range(100):
        found.setdefault(preference(f"site-{i}", 3)[0], f"site-{i}")
    return [found[0], found[1], found[2]]


def _manifest(sites: list[Site]) -> str:
    text = (SAMPLES / "modbus.yaml").read_text()
    model, device = text.split("\n---\n", 1) if "\n---\n" in text else (text, "")
    docs = [model]
    for site in sites:
        docs.append(
            device.replace("thermostat-1", site.device)
            .replace("edge-node-1", site.node)
            .replace("port: 5020", f"port: {site.port}")
        )
    return "\n---\n".join(docs)


def _site(tmp: Path, first: CloudProcess, others: tuple[CloudProcess, ...], node: str) -> Site:
    (tmp / node).mkdir(parents=True)
    broker = Mosquitto(tmp / node).start()
    port = free_port()
    simulator = Proc([sys.executable, "-m", "simulators.modbus", "--port", str(port)],
                     tmp / node / "simulator.log").start()  # fmt: skip
    wait_for(lambda: port_open(port), what="Modbus simulator")
    edge = first.edge(tmp / node / "edge", broker.url, node=node, replicas=others)
    edge.extra += ["--heartbeat", "1"]
    edge.start()
    mapper = Proc([sys.executable, "-m", "mappers.modbus", "--node", node, "--mqtt", broker.url],
                  tmp / node / "mapper.log").start()  # fmt: skip
    probe = MqttProbe(broker.port)
    probe.subscribe("$hw/events/device/#")
    return Site(node, f"thermo-{node}", port, broker, edge, probe, [simulator, mapper])


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    apiserver = ApiServerProcess(tmp_path / "apiserver").start()
    replicas: list[CloudProcess] = []
    sites: list[Site] = []
    try:
        first = CloudProcess(apiserver, tmp_path / "cloud-0", extra=(*FLAGS, "--identity", "r0"))
        replicas.append(first.start())
        for i in (1, 2):
            replicas.append(first.replica(tmp_path / f"cloud-{i}", *FLAGS, "--identity", f"r{i}"))
        for node in _names():
            sites.append(_site(tmp_path, first, tuple(replicas[1:]), node))
        yield Fleet(apiserver, replicas, sites)
    finally:
        for site in sites:
            site.probe.close()
            for proc in site.procs:
                proc.stop()
            site.edge.stop()
            site.broker.stop()
        for replica in replicas:
            replica.stop()
        apiserver.stop()


def _get(fleet: Fleet, *what: str) -> dict[str, Any]:
    got = fleet.apiserver.kubectl("get", *what, "-o", "json", check=False)
    return dict(json.loads(got.stdout)) if got.returncode == 0 else {}


def _served_by(fleet: Fleet, node: str) -> int | None:
    """Which replica serves the node: the stream endpoint it put on the Node."""
    endpoint = _get(fleet, "node", node).get("metadata", {}).get("annotations", {}).get(
        "cloudstream.kedge.io/endpoint", "")  # fmt: skip
    ports = [r.stream_port for r in fleet.replicas]
    return next((i for i, p in enumerate(ports) if endpoint.endswith(f":{p}")), None)


def _reading(fleet: Fleet, device: str) -> int:
    status = _get(fleet, "devicestatus", device).get("status") or {}
    for twin in status.get("twins") or []:
        if twin["propertyName"] == "temperature":
            return int(twin["reported"].get("metadata", {}).get("timestamp", 0))
    return 0


def _patch(fleet: Fleet, device: str, value: int) -> None:
    current = _get(fleet, "device", device)["spec"]["properties"]
    for prop in current:
        if prop["name"] == "setpoint":
            prop["desired"] = {"value": str(value)}
    body = {"spec": {"properties": current}}
    fleet.apiserver.kubectl("patch", "device", device, "--type", "merge", "-p", json.dumps(body))


def _deltas(site: Site) -> list[str]:
    """The setpoint values the mapper was asked for, in order, retries of one value collapsed."""
    while not site.probe.messages.empty():
        site.probe.seen.append(site.probe.messages.get_nowait())
    seen: list[str] = []
    for topic, payload in site.probe.seen:
        if not topic.endswith(f"/{site.device}/twin/update/delta"):
            continue
        value = (json.loads(payload).get("delta") or {}).get("setpoint")
        if value is not None and (not seen or seen[-1] != value):
            seen.append(value)
    return seen


def _conditions(fleet: Fleet, device: str) -> dict[str, str]:
    conditions = (_get(fleet, "device", device).get("status") or {}).get("conditions") or []
    wanted = ("NodeReady", "MapperAvailable", "ModelFound")
    return {c["type"]: c["status"] for c in conditions if c["type"] in wanted}


def _holder(fleet: Fleet) -> str:
    lease = _get(fleet, "lease", "kedge-cloudcore", "-n", "kube-system")
    return str((lease.get("spec") or {}).get("holderIdentity", ""))


@pytest.mark.timeout(300)
def test_a_replica_killed_while_devices_change_loses_nothing(tmp_path: Path, fleet: Fleet
                                                             ) -> None:  # fmt: skip
    manifest = tmp_path / "devices.yaml"
    manifest.write_text(_manifest(fleet.sites))
    fleet.apiserver.kubectl("apply", "-f", str(manifest))
    for i, site in enumerate(fleet.sites):
        wait_for(lambda s=site: modbus_register(s.port) == 21, timeout=60,  # type: ignore[misc]
                 what=f"{site.device}'s desired setpoint on its simulator")  # fmt: skip
        wait_for(lambda s=site: _served_by(fleet, s.node) is not None, timeout=30,  # type: ignore[misc]
                 what=f"{site.node} registered by a replica")  # fmt: skip
        assert _served_by(fleet, site.node) == i  # spread: each node on its own replica
    wait_for(lambda: _holder(fleet) == "r0", timeout=30, what="r0 leading (started first)")
    victim = fleet.sites[0]
    for step, value in enumerate(range(30, 36)):
        if step == 2:
            fleet.replicas[0].kill()  # no goodbye, mid-stream
            killed = time.monotonic()
        for site in fleet.sites:
            _patch(fleet, site.device, value)
    wait_for(lambda: _served_by(fleet, victim.node) in (1, 2), timeout=60,
             what="the killed replica's node served by another replica")  # fmt: skip
    assert time.monotonic() - killed < 60
    for site in fleet.sites:
        wait_for(lambda s=site: modbus_register(s.port) == 35, timeout=60,  # type: ignore[misc]
                 what=f"the last change on {site.device}")  # fmt: skip
    after = {s.device: s.edge.twin(f"default/{s.device}", "temperature")["reported"]["timestamp"]
             for s in fleet.sites}  # fmt: skip
    for site in fleet.sites:
        wait_for(lambda s=site: _reading(fleet, s.device) >= after[s.device], timeout=60,  # type: ignore[misc]
                 what=f"{site.device}'s readings since the kill in its DeviceStatus")  # fmt: skip
    wait_for(lambda: _holder(fleet) in ("r1", "r2"), timeout=60,
             what="the leader Lease taken over by a surviving replica")  # fmt: skip
    target = fleet.sites[1].node  # the scheduler now runs on the new leader
    fleet.apiserver.kubectl("apply", "-f", "-", stdin=POD.replace("NODE", target))
    wait_for(lambda: _get(fleet, "pod", "placed").get("spec", {}).get("nodeName") == target,
             timeout=30, what="a new pod scheduled by the new leader")  # fmt: skip
    for site in fleet.sites:  # conditions from the facts every replica sees in the Nodes
        wait_for(lambda s=site: _conditions(fleet, s.device) == {
            "NodeReady": "True", "MapperAvailable": "True", "ModelFound": "True"},  # type: ignore[misc]
                 timeout=30, what=f"{site.device}'s conditions")  # fmt: skip
        asked = _deltas(site)
        assert asked[-1] == "35" and len(asked) == len(set(asked)), (site.node, asked)
        assert asked == sorted(asked, key=int), (site.node, asked)  # never an older one again


def test_a_full_replica_refuses_new_nodes_which_go_to_another(tmp_path: Path) -> None:
    apiserver = ApiServerProcess(tmp_path / "apiserver").start()
    first = CloudProcess(apiserver, tmp_path / "cloud-0", extra=("--node-limit", "1"))
    replicas, edges = [first], []
    try:
        first.start()
        replicas.append(first.replica(tmp_path / "cloud-1", "--node-limit", "1"))
        fleet = Fleet(apiserver, replicas, [])
        names = [n for n in (f"node-{i}" for i in range(100)) if preference(n, 2)[0] == 0]
        for name in names[:2]:  # both start at the first replica
            edge = first.edge(tmp_path / name, "", node=name, replicas=(replicas[1],))
            edge.mqtt_url, edge.broker_port = None, free_port()
            edges.append(edge.start())
            wait_for(lambda n=name: _served_by(fleet, n) is not None, timeout=30,  # type: ignore[misc]
                     what=f"{name} registered")  # fmt: skip
        assert sorted(_served_by(fleet, n) for n in names[:2]) == [0, 1]
        assert any("refused with 503: node limit (1) reached" in e.log() for e in edges)
    finally:
        for edge in edges:
            edge.stop()
        for replica in replicas:
            replica.stop()
        apiserver.stop()
