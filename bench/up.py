"""`kedge up` to all four sample devices reporting (seconds), and the resident memory of the
whole system once it runs (every process `kedge up` started, pods included), with the mappers as
host processes or (`--runtime cri`) as containers (containerd, its shims and the containers
counted too).

Baseline in the same run: a bare Python interpreter's start-up time and resident memory, so
the figures read as "so many interpreters' worth".
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from edgecore.edged.cri.runtime import run_dir
from harness.support import ROOT, free_port, wait_for
from mappers.registry import PROTOCOLS as REGISTERED

PROTOCOLS = set(REGISTERED)


def reporting(port: int) -> bool:
    try:
        items = httpx.get(f"http://127.0.0.1:{port}/v1/devices", timeout=2).json()["items"]
    except (httpx.HTTPError, ValueError, KeyError):
        return False
    return {d["protocol"] for d in items if any(t.get("reported") for t in d["twins"])} >= PROTOCOLS


def bare_interpreter() -> tuple[float, float]:
    """(seconds to start and exit `python -c pass`, MiB resident of an idle interpreter)."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    took = time.perf_counter() - started
    idle = subprocess.Popen(
        [sys.executable, "-c", "import time; print(flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE,
    )
    assert idle.stdout is not None
    idle.stdout.readline()  # it is up
    rss = psutil.Process(idle.pid).memory_info().rss / 2**20
    idle.kill()
    idle.wait()
    return took, rss


def role(process: psutil.Process) -> str:
    """A short name: `kedge up (edgecore)`, `mappers.modbus`, `simulate zigbee`, ..."""
    argv = process.cmdline()
    if "up" in argv:
        return "kedge up (edgecore, in-process)"
    if "-m" in argv:
        rest = argv[argv.index("-m") + 1 :]
        return " ".join(rest[:3] if rest[:2] == ["kedge", "simulate"] else rest[:1])
    return process.name()


def _shims(state: Path) -> list[psutil.Process]:
    """The CRI runtime's shims for this run and what they run (they are not kedge up's
    children: containerd starts them detached)."""
    marker = str(run_dir(state / "edge"))
    shims = [p for p in psutil.process_iter(["cmdline"])
             if "containerd-shim" in " ".join(p.info["cmdline"] or []) and
             marker in " ".join(p.info["cmdline"] or [])]  # fmt: skip
    return [q for shim in shims for q in (shim, *shim.children(recursive=True))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runtime", choices=["process", "cri"], default="process")
    runtime = parser.parse_args().runtime
    took, bare_rss = bare_interpreter()
    with tempfile.TemporaryDirectory(prefix="kedge-up-") as tmp:
        http, state = free_port(), Path(tmp) / "state"
        argv = [sys.executable, "-m", "kedge", "up", "--runtime", runtime,
                "--state-dir", str(state),
                "--http-port", str(http), "--mqtt-port", str(free_port()),
                "--api-port", str(free_port()), "--cloud-port", str(free_port()),
                "--join-port", str(free_port()), "--stream-port", str(free_port())]  # fmt: skip
        started = time.perf_counter()
        up = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: reporting(http), timeout=240, what="four devices reporting")
            seconds = time.perf_counter() - started
            time.sleep(5)  # a measurement window: memory after five seconds of running
            processes = [psutil.Process(up.pid), *psutil.Process(up.pid).children(recursive=True),
                         *_shims(state)]  # fmt: skip
            parts: dict[str, float] = {}
            for process in (p for p in processes if p.is_running()):
                name = role(process)
                parts[name] = parts.get(name, 0.0) + process.memory_info().rss / 2**20
            rss = sum(parts.values())
        finally:
            up.send_signal(signal.SIGINT)
            up.wait(60)
    print(f"bare interpreter: starts and exits in {took:.2f} s, {bare_rss:.1f} MiB resident")  # noqa: T201
    print(f"kedge up --runtime {runtime} -> all four sample devices reporting: "  # noqa: T201
          f"{seconds:.1f} s "
          f"({seconds / took:.0f}x a bare interpreter start)")  # fmt: skip
    print(f"kedge up resident memory: {rss:.0f} MiB in {len(processes)} processes "  # noqa: T201
          f"({rss / bare_rss:.0f}x an idle interpreter)")  # fmt: skip
    for name, mib in sorted(parts.items(), key=lambda item: -item[1]):
        print(f"  {mib:6.0f} MiB  {name}")  # noqa: T201


if __name__ == "__main__":
    main()
