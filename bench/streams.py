"""`kubectl exec` round trip and `kubectl logs -f` line latency against an edge pod, p50/p99,
next to the same commands run locally on the node.

exec: wall time of `kubectl exec stamp -- true` (kubectl start, API server, CloudStream, the
node's channel, the process runtime, the Status back) against `sh -c true` run directly, and
`kubectl get pod` (what kubectl's own start and one API call cost).
logs -f: the pod prints its clock (ns) every 50 ms; latency is the time a line is read by
`kubectl logs -f` minus the time written, against `tail -f` on the pod's log file on the node.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

from bench.cloud import NODE, cloud_system
from bench.harness import summary
from harness.apiserver import kubectl_binary
from harness.support import wait_for

SCRIPT = "import time\nwhile True:\n    print(time.time_ns(), flush=True)\n    time.sleep(0.05)"
POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "stamp", "namespace": "default"},
       "spec": {"nodeName": NODE, "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "main", "image": "kedge/python",
                                "args": ["-c", SCRIPT]}]}}  # fmt: skip


def timed(argv: list[str], count: int) -> list[float]:
    """ms per run of `argv`, each to its end."""
    samples: list[float] = []
    for _ in range(count):
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def line_latency(argv: list[str], lines: int) -> list[float]:
    """ms from a line's own timestamp to its arrival through `argv`'s output."""
    samples: list[float] = []
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as follower:
        assert follower.stdout is not None
        try:
            while len(samples) < lines:
                line = follower.stdout.readline()
                arrived = time.time_ns()
                if line.strip().isdigit():
                    samples.append((arrived - int(line)) / 1e6)
        finally:
            follower.kill()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--execs", type=int, default=30)
    parser.add_argument("--lines", type=int, default=200)
    args = parser.parse_args()
    with cloud_system(mapper=False) as system:
        api = system.cloud.apiserver
        kubectl = [kubectl_binary(), "--kubeconfig", str(api.kubeconfig)]
        api.kubectl("apply", "-f", "-", stdin=json.dumps(POD))
        wait_for(lambda: "Running" in api.kubectl("get", "pod", "stamp").stdout, timeout=60,
                 what="the pod running")  # fmt: skip
        log_file = next(Path(system.edge.state_dir).rglob("main.log"))
        results = {
            "exec (kubectl)": timed([*kubectl, "exec", "stamp", "--", "true"], args.execs),
            "exec (local sh)": timed(["sh", "-c", "true"], args.execs),
            "kubectl get pod (kubectl alone)": timed(
                [*kubectl, "get", "pod", "stamp"], args.execs
            ),  # fmt: skip
            "logs -f (kubectl)": line_latency(
                [*kubectl, "logs", "-f", "stamp", "--tail=0"], args.lines
            ),  # fmt: skip
            "logs -f (local tail -f)": line_latency(
                ["tail", "-n0", "-f", str(log_file)], args.lines
            ),  # fmt: skip
        }
    for name, samples in results.items():
        print(f"{name:32} {summary(samples)}")


if __name__ == "__main__":
    main()
