"""Pods as real containers: kubectl -> API server -> cloudcore -> edged -> edgecore's own
containerd through CRI (`--runtime cri`). Env from a ConfigMap, a ConfigMap volume as a real
mount, `kubectl logs`, a memory limit that OOM-kills (shown as Kubernetes shows it), delete ->
container and sandbox gone, and edgecore's stop leaves nothing behind."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from edgecore.edged.cri.client import CriClient
from edgecore.edged.cri.containerd import Containerd
from edgecore.edged.cri.images import busybox_rootfs, import_archive, pack, pause_rootfs
from edgecore.edged.cri.runtime import PAUSE, run_dir
from harness.apiserver import kubectl_binary
from harness.cloud import CloudProcess
from harness.support import Mosquitto, free_port, port_open, wait_for
from kedge.cri import pb
from tests.integration.test_pod_streams import terminal

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


def _greeting(who: str = "the cloud") -> dict[str, Any]:
    meta = {"name": "greeting", "namespace": "default"}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"who": who}}


def _busybox_into(socket: Path, work: Path, page: str = "") -> None:
    """The busybox test image (with `/www/index.html` holding `page`) in a containerd."""
    rootfs = work / "busybox"
    rootfs.mkdir()
    busybox_rootfs(rootfs)
    if page:
        (rootfs / "www").mkdir()
        (rootfs / "www" / "index.html").write_text(page)
    import_archive(socket, pack(rootfs, BUSYBOX, work / "busybox.tar", ["/bin/sh"]))


def _logs(cloud: CloudProcess, *args: str) -> str:
    """`kubectl logs ARGS`, "" while the node cannot answer yet."""
    return cloud.apiserver.kubectl("logs", *args, check=False).stdout


def _running(socket: Path) -> list[str]:
    """Ids of the containers running in the runtime."""

    async def listed() -> list[str]:
        client = CriClient(f"unix://{socket}")
        try:
            reply = await client.runtime.ListContainers(pb.ListContainersRequest(), timeout=10)
            return [c.id for c in reply.containers if c.state == pb.CONTAINER_RUNNING]
        finally:
            await client.close()

    return asyncio.run(listed())


def _sandboxes(socket: Path, uid: str) -> list[Any]:
    async def listed() -> list[Any]:
        client = CriClient(f"unix://{socket}")
        try:
            return await client.sandboxes({"io.kubernetes.pod.uid": uid} if uid else {})
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
        _busybox_into(socket, tmp_path)
        configmap = _greeting()
        hog = _pod(
            "hog",
            "dd if=/dev/zero of=/dev/null bs=200M count=1",
            resources={"limits": {"memory": "64Mi"}},
        )
        probed = _pod("probed", "echo ip $MY_IP; touch /tmp/ready; sleep 3600",
                      readinessProbe={"exec": {"command": ["cat", "/tmp/ready"]},
                                      "periodSeconds": 1})  # fmt: skip
        probed["spec"]["containers"][0]["env"].append(
            {"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
        )
        never = _pod("never", "true", image="localhost/kedge/absent:1",
                     imagePullPolicy="Never")  # fmt: skip
        for obj in (configmap, _pod("hello", SCRIPT), hog, probed, never):
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
        # an exec probe runs inside the container (the file exists there, not on the node)
        wait_for(lambda: _main(cloud, "probed").get("ready"), timeout=30, what="probed ready")
        ip = cloud.get("pod", "probed")["status"]["podIP"]  # type: ignore[index]
        assert ip != "127.0.0.1"
        assert f"ip {ip}" in cloud.apiserver.kubectl("logs", "probed").stdout  # fieldRef
        waiting = wait_for(lambda: _main(cloud, "never").get("state", {}).get("waiting")
                           or _main(cloud, "never").get("state", {}).get("terminated"),
                           timeout=30, what="the missing image refused")  # fmt: skip
        assert waiting["reason"] == "ErrImageNeverPull", waiting
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
    forward = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    edge = cloud.edge(tmp_path / "edge", broker.url)
    edge.extra += ["--runtime", "cri", "--heartbeat", "0.5"]
    edge.start()
    socket = run_dir(edge.state_dir) / "containerd.sock"
    try:
        _busybox_into(socket, tmp_path)
        for obj in (_greeting(), _pod("steady", SCRIPT)):
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
        cloud.stop()  # offline now: another crash, a restart without the cloud
        edge.kill()
        edge.start()
        edge_log = edge.state_dir / "edgecore.log"
        wait_for(lambda: edge_log.read_text().count("pod adopted from the runtime") >= 2,
                 timeout=30, what="the pod adopted again, offline")  # fmt: skip
        assert first.removeprefix("containerd://") in _running(socket)
    finally:
        edge.stop()
    assert not socket.exists()
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == forward  # the host's, again


def test_a_pod_gets_its_own_address_on_the_node_bridge(
    tmp_path: Path, cloud: CloudProcess, broker: Mosquitto
) -> None:
    """Not on the host network: an address of its own (CNI bridge + host-local), reachable
    from the node; the bridge and ip_forward as they were once edgecore stopped."""
    forward = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    links = set(os.listdir("/sys/class/net"))
    edge = cloud.edge(tmp_path / "edge", broker.url)
    edge.extra += ["--runtime", "cri", "--heartbeat", "0.5"]
    edge.start()
    try:
        _busybox_into(run_dir(edge.state_dir) / "containerd.sock", tmp_path,
                      "served from a pod\n")  # fmt: skip
        httpd = {"name": "main", "image": BUSYBOX,
                 "command": ["httpd", "-f", "-p", "8080", "-h", "/www"]}  # fmt: skip
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "web", "namespace": "default"},
               "spec": {"nodeName": "edge-node-1", "terminationGracePeriodSeconds": 2,
                        "containers": [httpd]}}  # fmt: skip
        cloud.apiserver.kubectl("apply", "-f", "-", stdin=json.dumps(pod))
        wait_for(lambda: _main(cloud, "web").get("state", {}).get("running"), timeout=60,
                 what="the pod running")  # fmt: skip
        ip = cloud.get("pod", "web")["status"]["podIP"]  # type: ignore[index]
        assert ip.startswith("10.") and ip != "127.0.0.1"
        page = wait_for(lambda: _fetch(f"http://{ip}:8080/"), timeout=30, what="the pod's page")
        assert page == "served from a pod\n"
        _streams_into_the_container(cloud)
    finally:
        edge.stop()
    assert set(os.listdir("/sys/class/net")) == links  # no bridge, no veth left
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == forward


def _streams_into_the_container(cloud: CloudProcess) -> None:
    """exec (through CRI's Exec and containerd's streaming server), a terminal, port-forward."""
    api = cloud.apiserver
    inside = api.kubectl("exec", "web", "--", "cat", "/www/index.html").stdout
    assert inside == "served from a pod\n"  # the container's filesystem, not the node's
    failed = api.kubectl("exec", "web", "--", "sh", "-c", "exit 5", check=False)
    assert failed.returncode == 5
    output, status = asyncio.run(terminal(cloud, b"stty size; exit 4\n", pod="web"))
    assert b"40 100" in output and status["details"]["causes"][0]["message"] == "4"
    local = free_port()
    command = [kubectl_binary(), "--kubeconfig", str(api.kubeconfig), "port-forward", "pod/web",
               f"{local}:8080"]  # fmt: skip
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as pf:
        try:
            wait_for(lambda: port_open(local), timeout=30, what="kubectl port-forward")
            assert _fetch(f"http://127.0.0.1:{local}/") == "served from a pod\n"
        finally:
            pf.terminate()


def _fetch(url: str) -> str | None:
    try:
        return httpx.get(url, timeout=2).text
    except httpx.HTTPError:
        return None


def test_config_changes_crash_loops_and_bad_specs_under_cri(
    tmp_path: Path, cloud: CloudProcess, broker: Mosquitto
) -> None:
    """A ConfigMap change seen inside the running container (a real mount); a failing container
    in CrashLoopBackOff with its previous log; limits that are not quantities refused with a
    reason, nothing left running."""
    edge = cloud.edge(tmp_path / "edge", broker.url)
    edge.extra += ["--runtime", "cri", "--heartbeat", "0.5", "--pod-backoff", "0.5"]
    edge.start()
    try:
        _busybox_into(run_dir(edge.state_dir) / "containerd.sock", tmp_path)
        configmap = _greeting()
        watcher = _pod("watcher", "while true; do cat /config/who; echo; sleep 0.2; done")
        crasher = _pod("crasher", "echo attempt; exit 3")
        crasher["spec"]["restartPolicy"] = "Always"
        bad = _pod("bad", "true", resources={"limits": {"memory": "lots"}})
        for obj in (configmap, watcher, crasher, bad):
            cloud.apiserver.kubectl("apply", "-f", "-", stdin=json.dumps(obj))
        wait_for(lambda: "the cloud" in _logs(cloud, "watcher"), timeout=60,
                 what="the mounted ConfigMap read")  # fmt: skip
        cloud.apiserver.kubectl("apply", "-f", "-", stdin=json.dumps(_greeting("the edge")))
        wait_for(lambda: "the edge" in _logs(cloud, "watcher", "--tail=3"), timeout=60,
                 what="the change seen inside the container")  # fmt: skip

        def looping() -> dict[str, Any] | None:
            main = _main(cloud, "crasher")
            waiting = main.get("state", {}).get("waiting") or {}
            return main if waiting.get("reason") == "CrashLoopBackOff" else None

        loop = wait_for(looping, timeout=60, what="CrashLoopBackOff")
        assert loop["restartCount"] >= 1 and loop["lastState"]["terminated"]["exitCode"] == 3
        assert _logs(cloud, "crasher", "--previous").strip() == "attempt"
        refused = wait_for(lambda: (_main(cloud, "bad").get("state") or {}).get("terminated")
                           or (_main(cloud, "bad").get("state") or {}).get("waiting"),
                           timeout=30, what="the bad limits refused")  # fmt: skip
        assert refused["reason"] == "CreateContainerError"
        assert "limits.memory" in refused["message"], refused
    finally:
        edge.stop()


def test_an_existing_runtime_at_cri_endpoint(
    tmp_path: Path, cloud: CloudProcess, broker: Mosquitto
) -> None:
    """`--remote-runtime-endpoint` (KubeEdge's flag): edged uses a containerd it did not start,
    and leaves it running when it stops (its pods' sandboxes removed)."""
    base = Path(tempfile.mkdtemp(prefix="kext-", dir="/tmp"))
    theirs = Containerd(base / "ctd", PAUSE)
    loop = asyncio.Runner()  # the containerd process belongs to the loop that started it
    loop.run(theirs.start())
    try:
        for name, build, cmd in ((PAUSE, pause_rootfs, ["/pause"]),
                                 (BUSYBOX, busybox_rootfs, ["/bin/sh"])):  # fmt: skip
            rootfs = base / name.rpartition("/")[2].partition(":")[0]
            rootfs.mkdir()
            build(rootfs)
            import_archive(theirs.socket, pack(rootfs, name, base / f"{rootfs.name}.tar", cmd))
        edge = cloud.edge(tmp_path / "edge", broker.url)
        edge.extra += ["--runtime", "cri", "--remote-runtime-endpoint", theirs.endpoint]
        edge.start()
        try:
            pod = _pod("hosted", SCRIPT)
            pod["spec"]["hostNetwork"] = True
            for obj in (_greeting(), pod):
                cloud.apiserver.kubectl("apply", "-f", "-", stdin=json.dumps(obj))
            wait_for(lambda: "hello from the cloud" in _logs(cloud, "hosted"), timeout=60,
                     what="the pod running in the existing containerd")  # fmt: skip
        finally:
            edge.stop()
        assert not run_dir(edge.state_dir).exists()  # edgecore started no containerd of its own
        assert _sandboxes(theirs.socket, "") == [] or all(  # its pod's sandbox is gone
            s.labels.get("io.kubernetes.pod.name") != "hosted"
            for s in _sandboxes(theirs.socket, "")
        )
        assert theirs.socket.exists()  # theirs runs on
    finally:
        loop.run(theirs.stop())
        loop.close()
        shutil.rmtree(base, ignore_errors=True)
