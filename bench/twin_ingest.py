"""Reported-twin ingest through one edgecore vs raw broker pass-through, same client, same run.

A closed loop keeps WINDOW messages in flight (bench/loadclient.py): an update counts when its
`/result` arrives (validated, committed to SQLite, answered); a raw message counts when the
broker delivers it back to the subscriber. Target: >= 10,000 updates/s and >= 50 % of raw.
"""

from __future__ import annotations

import argparse

from bench.harness import device_ids, edge_node
from bench.loadclient import WINDOW, measure


def updates(devices: list[str]) -> list[tuple[str, bytes]]:
    """Reported temperatures for every device, cycling through 97 values."""
    messages = []
    for n, device in enumerate(devices * 10):
        value = f"{20 + (n % 97) / 10:.1f}"
        payload = f'{{"event_id":"","twin":{{"temperature":{{"actual":{{"value":"{value}"}}}}}}}}'
        messages.append((f"$hw/events/device/{device}/twin/update", payload.encode()))
    return messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    args = parser.parse_args()
    devices = device_ids(100)
    ingest_messages = updates(devices)
    raw_messages = [
        (f"bench/raw/{topic.split('/')[4]}", payload) for topic, payload in ingest_messages
    ]
    with edge_node(len(devices)) as (broker, _edge):
        raw, _, raw_slices = measure(
            broker.port, "bench/raw/#", raw_messages, args.seconds, args.warmup
        )
        ingest, errors, ingest_slices = measure(
            broker.port,
            "$hw/events/device/+/+/twin/update/result",
            ingest_messages,
            args.seconds,
            args.warmup,
        )
    met = ingest >= 10_000 and ingest >= raw / 2
    print(f"twin ingest, 100 devices, {args.seconds:.0f} s each, window {WINDOW}")
    print(f"  raw broker pass-through: {raw:,.0f} msg/s")
    print(
        f"  edgecore ingest:         {ingest:,.0f} updates/s ({ingest / raw:.0%} of raw; "
        f"error replies {errors})"
    )
    print(f"  per 10 s, raw:    {' '.join(f'{r:,.0f}' for r in raw_slices)}")
    print(f"  per 10 s, ingest: {' '.join(f'{r:,.0f}' for r in ingest_slices)}")
    print(f"  target >= 10,000 updates/s and >= 50% of raw: {'MET' if met else 'NOT MET'}")


if __name__ == "__main__":
    main()
