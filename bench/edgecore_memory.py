"""edgecore resident memory with 100 devices loaded and idle, next to a bare interpreter.

Both processes are started in the same run from the same Python; the bare interpreter is the
floor any Python process pays. Target: edgecore at most 70 MB (KubeEdge's edgecore needs ~70 MB).
"""

from __future__ import annotations

import subprocess
import sys
import time

import psutil

from bench.harness import edge_node


def rss_mb(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / 2**20


def bare_interpreter_mb() -> float:
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        time.sleep(1.0)  # benchmark pacing: let the interpreter finish starting
        return rss_mb(process.pid)
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(5)


def main() -> None:
    bare = bare_interpreter_mb()
    with edge_node(100) as (_broker, edge):
        assert edge.process is not None
        assert len(edge.get("/v1/devices").json()["items"]) == 100
        edge.get("/metrics")
        time.sleep(5.0)  # benchmark pacing: idle
        idle = rss_mb(edge.process.pid)
    print("edgecore memory, 100 devices x 5 properties, idle")
    print(f"  bare Python interpreter: {bare:.1f} MB")
    print(f"  edgecore RSS:            {idle:.1f} MB ({idle / bare:.1f}x the bare interpreter)")
    print(f"  target <= 70 MB: {'MET' if idle <= 70 else 'NOT MET'}")


if __name__ == "__main__":
    main()
