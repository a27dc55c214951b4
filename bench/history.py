"""Telemetry history: twin ingest with history on vs off (same client, same run; target: history
costs under 15 % of ingest), and history queries over one day of 1 s data (86,400 points) through
the edge HTTP API, raw and at 1 min steps, p50/p99.
"""

from __future__ import annotations

import argparse
import time

import httpx

from bench.harness import device_ids, edge_node, summary
from bench.loadclient import measure
from bench.twin_ingest import updates
from devicetwin.history import Point
from devicetwin.store import Batch, TwinStore

DAY_S = 86_400
RESULTS = "$hw/events/device/+/+/twin/update/result"


def ingest(flags: list[str], seconds: float, warmup: float) -> float:
    devices = device_ids(100)
    with edge_node(len(devices), flags) as (broker, _edge):
        rate, _errors, _slices = measure(broker.port, RESULTS, updates(devices), seconds, warmup)
    return rate


def queries(count: int) -> dict[str, list[float]]:
    """ms per query of one day of 1 s data, raw and per minute (the edge stopped while the
    day is written straight into its store, then started again to serve it)."""
    device = device_ids(1)[0]
    with edge_node(1) as (_broker, edge):
        edge.stop()
        store = TwinStore(edge.state_dir / "edgecore.db")
        end = int(time.time() * 1000)
        start = end - DAY_S * 1000
        day: list[Point] = [(device, "temperature", start + i * 1000, f"{20 + (i % 97) / 10:.1f}")
                            for i in range(DAY_S)]  # fmt: skip
        store.commit(Batch(history=day))
        store.close()
        edge.start()
        path = f"{edge.base}/v1/devices/{device}/twin/temperature/history"
        out: dict[str, list[float]] = {"raw (86,400 points)": [], "1 min steps (1,440)": []}
        with httpx.Client(timeout=60) as client:
            for name, step in (("raw (86,400 points)", ""), ("1 min steps (1,440)", "&step=1m")):
                for _ in range(count):
                    began = time.perf_counter()
                    answer = client.get(f"{path}?since={start}&until={end + 1}{step}")
                    answer.raise_for_status()
                    out[name].append((time.perf_counter() - began) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--queries", type=int, default=20)
    args = parser.parse_args()
    off = ingest(["--history-max-age", "0"], args.seconds, args.warmup)
    on = ingest([], args.seconds, args.warmup)
    cost = 1 - on / off
    print(f"twin ingest, 100 devices, {args.seconds:.0f} s each")
    print(f"  history off: {off:,.0f} updates/s")
    print(f"  history on:  {on:,.0f} updates/s ({cost:.0%} less; target under 15 %: "
          f"{'MET' if cost < 0.15 else 'NOT MET'})")  # fmt: skip
    for name, samples in queries(args.queries).items():
        print(f"  query {name:22} {summary(samples)}")


if __name__ == "__main__":
    main()
