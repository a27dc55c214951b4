"""Pods as real containers: kubectl -> API server -> cloudcore -> edged -> edgecore's own
containerd through CRI (`--runtime cri`). Env from a ConfigMap, a ConfigMap volume as a real
mount, `kubectl logs`, a memory limit that OOM-kills (shown as Kubernetes shows it), delete ->
container and sandbox gone, and edgecore's stop leaves nothing behind."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from edgecore.edged.cri.client import CriClient
from edgecore.edged.cri.images import busybox_rootfs, import_archive, pack
from edgecore.edged.cri.runtime import run_dir
from harness.cloud import CloudProcess
from harness.support import Mosquitto, wait_for

BUSYBOX = "localhost/kedge/busybox:test"
pytestmark = pytest.mark.skipif(
    os.geteuid() != 0
    or not all(shutil.which(b) for b in ("containerd", "runc", "ctr", "gcc"))
    or not Path("/bin/busybox").exists(),
    reason="needs root, containerd, runc, gcc and busybox-static (make test installs them)",
)
SCRIPT = "echo hello from $GREETING; cat /config/who; echo; trap 'exit 0' TERM; sleep 3600 & wait"


def _pod(name: str, script: str, **container: Any) -> dict[str, Any]:
    main = {
        "name": "main",
        "image": BUSYBOX,
        "command": ["/bin/sh", "-c", script],
        "env": [
            {
                "name": "GREETING",
                "valueFrom": {"configMapKeyRef": {"name": "greeting", "key": "who"}},
            }
        ],
        "volumeMounts": [{"name": "config", "mountPath": "/config"}],
        **container,
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "nodeName": "edge-node-1",
            "containers": [main],
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 5,
            "volumes": [{"name": "config", "configMap": {"name": "greeting"}}],
        },
    }


def _main(cloud: CloudProcess, name: str) -> dict[str, Any]:
    pod = cloud.get("pod", name) or {}
    return dict(((pod.get("status") or {}).get("containerStatuses") or [{}])[0])


def _sandboxes(socket: Path, uid: str) -> list[Any]:
    async def listed() -> list[Any]:
        client = CriClient(f"unix://{socket}")
        try:
            return await client.sandboxes({"io.kubernetes.pod.uid": uid})
        finally:
            await client.close()

    return asyncio.run(listed())


def test_pods_run_as_containers_under_cri(
    tmp_path: Path, cloud: CloudProcess, broker: Mosquitto
) -> None:
    edge = cloud.edge(tmp_path / "edge", broker.url)
    edge.extra += ["--runtime", "cri", "--heartbeat", "0.5"]
    cgroups = set(Path("/sys/fs/cgroup").glob("*/k8s.io"))
    edge.start()
    socket = run_dir(edge.state_dir) / "containerd.sock"
    try:
        rootfs = tmp_path / "busybox"
        rootfs.mkdir()
        busybox_rootfs(rootfs)
        import_archive(socket, pack(rootfs, BUSYBOX, tmp_path / "busybox.tar", ["/bin/sh"]))
        configmap = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "greeting", "namespace": "default"},
            "data": {"who": "the cloud"},
        }
        hog = _pod(
            "hog",
            "dd if=/dev/zero of=/dev/null bs=200M count=1",
            resources={"limits": {"memory": "64Mi"}},
        )
        for obj in (configmap, _pod("hello", SCRIPT), hog):
            cloud.apiserver.kubectl("apply", "-f", "-", stdin=json.dumps(obj))
        wait_for(
            lambda: _main(cloud, "hello").get("state", {}).get("running"),
            timeout=60,
            what="the pod running as a container",
        )
        assert _main(cloud, "hello")["containerID"].startswith("containerd://")
        wait_for(
            lambda: "the cloud" in cloud.apiserver.kubectl("logs", "hello").stdout,
            timeout=30,
            what="kubectl logs",
        )
        lines = cloud.apiserver.kubectl("logs", "hello").stdout.splitlines()
        assert lines[:2] == ["hello from the cloud", "the cloud"]  # env, and the mounted file
        killed = wait_for(
            lambda: _main(cloud, "hog").get("state", {}).get("terminated"),
            timeout=60,
            what="the memory hog ended",
        )
        assert (killed["reason"], killed["exitCode"]) == ("OOMKilled", 137)
        uid = cloud.get("pod", "hello")["metadata"]["uid"]  # type: ignore[index]
        assert len(_sandboxes(socket, uid)) == 1
        cloud.apiserver.kubectl("delete", "pod", "hello", "--wait=false")
        wait_for(lambda: not _sandboxes(socket, uid), timeout=30, what="the pod's sandbox removed")
    finally:
        edge.stop()
    assert not socket.exists() and not run_dir(edge.state_dir).exists()
    assert set(Path("/sys/fs/cgroup").glob("*/k8s.io")) == cgroups
    assert not [
        line
        for line in Path("/proc/mounts").read_text().splitlines()
        if str(edge.state_dir) in line
    ]


def test_a_killed_edgecore_finds_its_containers_running(
    tmp_path: Path, cloud: CloudProcess, broker: Mosquitto
) -> None:
    """Pods outlive edgecore's crash: re-adopted from containerd, not started again."""
    edge = cloud.edge(tmp_path / "edge", broker.url)
    edge.extra += ["--runtime", "cri", "--heartbeat", "0.5"]
    edge.start()
    socket = run_dir(edge.state_dir) / "containerd.sock"
    try:
        rootfs = tmp_path / "busybox"
        rootfs.mkdir()
        busybox_rootfs(rootfs)
        import_archive(socket, pack(rootfs, BUSYBOX, tmp_path / "busybox.tar", ["/bin/sh"]))
        configmap = {"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": "greeting", "namespace": "default"},
                     "data": {"who": "the cloud"}}  # fmt: skip
        for obj in (configmap, _pod("steady", SCRIPT)):
            cloud.apiserver.kubectl("apply", "-f", "-", stdin=json.dumps(obj))
        wait_for(lambda: _main(cloud, "steady").get("state", {}).get("running"), timeout=60,
                 what="the pod running")  # fmt: skip
        first = _main(cloud, "steady")["containerID"]
        edge.kill()  # SIGKILL: containerd goes with it, the container's shim does not
        edge.start()
        uid = cloud.get("pod", "steady")["metadata"]["uid"]  # type: ignore[index]
        wait_for(lambda: len(_sandboxes(socket, uid)) == 1, timeout=30, what="the sandbox")
        log = edge.log()
        wait_for(lambda: "pod adopted from the runtime" in edge.log(), timeout=30,
                 what="the pod adopted")  # fmt: skip
        assert _main(cloud, "steady")["containerID"] == first, log
        assert len(_sandboxes(socket, uid)) == 1  # not a second one
    finally:
        edge.stop()
    assert not socket.exists()
