"""Reported-twin ingest with the edge broker's identities and ACLs on, next to the same ingest
through an open broker (today's `bench/twin_ingest.py` setting), in the same run; and what the
mapper's check of every delta (type, range, access) costs.

With ACLs, the load publishes as `mapper-modbus` (may report for the 100 Modbus devices only)
and reads the results as `app`; mosquitto checks every publish and every delivery against the
ACL. Target: within 10 % of the open broker.
"""

from __future__ import annotations

import argparse
import tempfile
import timeit
from pathlib import Path

from bench.harness import NODE, device_ids, edge_node, write_manifest
from bench.loadclient import WINDOW, Auth, measure
from bench.twin_ingest import updates
from devicetwin.memberspec import PropertyConfig
from harness.support import EdgeProcess, free_port

RESULTS = "$hw/events/device/+/+/twin/update/result"


def _auth(state: Path, role: str) -> Auth:
    url = (state / "broker" / f"{role}.url").read_text().strip()
    user, _, password = url.removeprefix("mqtt://").rpartition("@")[0].partition(":")
    return user, password


def with_acls(seconds: float, warmup: float) -> tuple[float, int]:
    with tempfile.TemporaryDirectory(prefix="kedge-acl-") as tmp:
        port = free_port()
        edge = EdgeProcess(Path(tmp) / "state", node=NODE, broker_port=port,
                           devices=[write_manifest(Path(tmp) / "devices.yaml")])  # fmt: skip
        edge.start()
        try:
            state = edge.state_dir
            rate, errors, _ = measure(port, RESULTS, updates(device_ids(100)), seconds, warmup,
                                      publisher=_auth(state, "mapper-modbus"),
                                      subscriber=_auth(state, "app"))  # fmt: skip
        finally:
            edge.stop()
    return rate, errors


def delta_check() -> float:
    """Microseconds per delta check (what the mapper adds before each write)."""
    prop = PropertyConfig("setpoint", "int", "ReadWrite", minimum=5, maximum=35)
    calls = 200_000
    return timeit.timeit(lambda: prop.desired_problem("21"), number=calls) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    args = parser.parse_args()
    with edge_node(100) as (broker, _edge):
        open_rate, open_errors, _ = measure(broker.port, RESULTS, updates(device_ids(100)),
                                            args.seconds, args.warmup)  # fmt: skip
    acl_rate, acl_errors = with_acls(args.seconds, args.warmup)
    ratio = acl_rate / open_rate
    print(f"twin ingest, 100 devices, {args.seconds:.0f} s each, window {WINDOW}")
    print(f"  open broker (baseline): {open_rate:,.0f} updates/s (error replies {open_errors})")
    print(f"  identities and ACLs:    {acl_rate:,.0f} updates/s (error replies {acl_errors})")
    print(f"  ratio {ratio:.0%} of the open broker; target within 10 %: "
          f"{'MET' if ratio >= 0.9 else 'NOT MET'}")  # fmt: skip
    print(f"  mapper delta check: {delta_check():.2f} us per delta")


if __name__ == "__main__":
    main()
