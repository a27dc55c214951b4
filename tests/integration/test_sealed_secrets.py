"""Secrets sealed at rest: a Secret a pod on the edge uses travels kubectl -> API server ->
cloudcore -> edgecore -> the pod, and its value is in no file of any state dir in clear (the
databases, their WAL files, anything); the pod reads it from memory (tmpfs), which is emptied
when the pod stops."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from harness.cloud import CloudProcess
from harness.support import Mosquitto, wait_for

VALUE = "kedge-very-secret-8e3f1c"
SCRIPT = "import sys, time; print(open(sys.argv[1]).read(), flush=True); time.sleep(600)"


def _containing(root: Path, needles: list[bytes]) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            found += [f"{path.relative_to(root)}: {n!r}" for n in needles if n in data]
    return found


def test_a_secret_is_nowhere_on_disk_in_clear(
    tmp_path: Path, cloud: CloudProcess, broker: Mosquitto
) -> None:
    edge = cloud.edge(tmp_path / "edge", broker.url)
    edge.extra += ["--heartbeat", "0.5"]
    edge.start()
    try:
        wait_for(lambda: cloud.get("node", "edge-node-1"), timeout=30, what="the node")
        secret = {"apiVersion": "v1", "kind": "Secret",
                  "metadata": {"name": "creds", "namespace": "default"},
                  "data": {"token": base64.b64encode(VALUE.encode()).decode()}}  # fmt: skip
        container = {"name": "main", "image": "kedge/python",
                     "args": ["-c", SCRIPT, "/etc/creds/token"],
                     "volumeMounts": [{"name": "creds", "mountPath": "/etc/creds"}]}  # fmt: skip
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "reader", "namespace": "default"},
               "spec": {"nodeName": "edge-node-1", "containers": [container],
                        "terminationGracePeriodSeconds": 1,
                        "volumes": [{"name": "creds",
                                     "secret": {"secretName": "creds"}}]}}  # fmt: skip
        for obj in (secret, pod):
            cloud.apiserver.kubectl("apply", "-f", "-", stdin=json.dumps(obj))
        wait_for(lambda: (logs := list((tmp_path / "edge" / "pods").glob("*/logs/main.log")))
                 and VALUE in logs[0].read_text(), timeout=30,
                 what="the pod read the Secret")  # fmt: skip
        shm = [p for p in Path("/dev/shm").glob("kedge-*/*/creds/token") if VALUE in p.read_text()]
        assert len(shm) == 1, "the Secret volume is in memory"
        assert oct(shm[0].parents[2].stat().st_mode & 0o777) == "0o700"
        needles = [VALUE.encode(), base64.b64encode(VALUE.encode())]
        stored = _containing(tmp_path, needles)
        # the pod's own log holds what it printed; nothing else may
        assert [f for f in stored if "/logs/main.log" not in f] == [], stored
    finally:
        edge.stop()
    assert not shm[0].exists(), "the Secret volume went with the pod's edgecore"
