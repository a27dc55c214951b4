"""Modbus mapper resident memory with 50 devices online, next to a bare interpreter.

Target: at most 50 MB.
"""

from __future__ import annotations

import time

from bench.edgecore_memory import bare_interpreter_mb, rss_mb
from bench.harness import modbus_system
from harness.support import wait_for


def main() -> None:
    bare = bare_interpreter_mb()
    with modbus_system(50) as (edge, mapper, _port):

        def all_online() -> bool:
            items = edge.get("/v1/devices").json()["items"]
            return len(items) == 50 and all(d["state"] == "online" for d in items)

        wait_for(all_online, timeout=60, what="50 devices online")
        time.sleep(5.0)  # benchmark pacing: steady state
        mapper_mb = rss_mb(mapper.pid)
    print("modbus mapper memory, 50 devices online (3 properties each, 1 s cycles)")
    print(f"  bare Python interpreter: {bare:.1f} MB")
    print(f"  mapper RSS:              {mapper_mb:.1f} MB ({mapper_mb / bare:.1f}x)")
    print(f"  target <= 50 MB: {'MET' if mapper_mb <= 50 else 'NOT MET'}")


if __name__ == "__main__":
    main()
