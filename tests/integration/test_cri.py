"""edged's CRI parts against a real containerd and runc: a private containerd started and stopped
under a state directory, images built and imported without a registry, a pod's sandbox and
containers run through CRI v1 (logs in CRI's format, a memory limit that OOM-kills), and nothing
left behind."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from edgecore.edged.cri.client import CriClient, sandbox_config
from edgecore.edged.cri.containerd import Containerd
from edgecore.edged.cri.images import busybox_rootfs, import_archive, pack, pause_rootfs
from harness.support import await_until
from kedge.cri import pb

PAUSE, BUSYBOX = "localhost/kedge/pause:test", "localhost/kedge/busybox:test"
NEEDED = ("containerd", "runc", "ctr", "gcc")
pytestmark = pytest.mark.skipif(
    os.geteuid() != 0
    or not all(shutil.which(b) for b in NEEDED)
    or not Path("/bin/busybox").exists(),
    reason="needs root, containerd, runc, gcc and busybox-static (make test installs them)",
)


def _mounts_under(base: Path) -> list[str]:
    return [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
            if line.split()[1].startswith(str(base))]  # fmt: skip


def _pod_cgroups() -> set[Path]:
    return set(Path("/sys/fs/cgroup").glob("*/k8s.io"))


def _processes_under(base: Path) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(base) in cmdline:
                found.append(cmdline)
    return found


@pytest_asyncio.fixture
async def runtime() -> AsyncIterator[tuple[Containerd, CriClient, Path]]:
    base = Path(tempfile.mkdtemp(prefix="kcri-", dir="/tmp"))
    cgroups_before = _pod_cgroups()
    for name, build, cmd in ((PAUSE, pause_rootfs, ["/pause"]),
                             (BUSYBOX, busybox_rootfs, ["/bin/sh"])):  # fmt: skip
        rootfs = base / "build" / name.rpartition("/")[2].partition(":")[0]
        rootfs.mkdir(parents=True)
        build(rootfs)
        pack(rootfs, name, base / f"{rootfs.name}.tar", cmd)
    containerd = Containerd(base / "ctd", PAUSE)
    await containerd.start()
    client = CriClient(containerd.endpoint)
    try:
        for archive in ("pause.tar", "busybox.tar"):
            await asyncio.to_thread(import_archive, containerd.socket, base / archive)
        yield containerd, client, base
    finally:
        await client.close()
        await containerd.stop()
        assert not _processes_under(base), "processes left running"
        assert not _mounts_under(base), "mounts left behind"
        assert _pod_cgroups() == cgroups_before, "cgroups left behind"
        shutil.rmtree(base, ignore_errors=True)


def _container(name: str, script: str, log: str, memory: int = 0) -> object:
    resources = pb.LinuxContainerResources(memory_limit_in_bytes=memory)
    security = pb.LinuxContainerSecurityContext(
        namespace_options=pb.NamespaceOption(network=pb.NODE, pid=pb.CONTAINER)
    )
    return pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name=name),
        image=pb.ImageSpec(image=BUSYBOX),
        command=["/bin/sh", "-c", script],
        envs=[pb.KeyValue(key="GREETING", value=b"hello")],
        log_path=log,
        linux=pb.LinuxContainerConfig(resources=resources, security_context=security),
    )


@pytest.mark.asyncio
async def test_a_pod_runs_as_containers_through_cri(
    runtime: tuple[Containerd, CriClient, Path],
) -> None:
    containerd, client, base = runtime
    version = await client.version()
    assert (version.runtime_name, version.runtime_api_version) == ("containerd", "v1")
    assert await client.image_present(BUSYBOX)
    logs = base / "logs" / "pod-1"
    logs.mkdir(parents=True)
    sandbox = sandbox_config("pod-1", "default", "uid-1", str(logs), host_network=True)
    sandbox_id = await client.run_sandbox(sandbox)
    script = "echo $GREETING from a container; trap 'exit 0' TERM; sleep 3600 & wait"
    app = await client.create_container(sandbox_id, _container("app", script, "app.log"), sandbox)
    hog = await client.create_container(
        sandbox_id, _container("hog", "dd if=/dev/zero of=/dev/null bs=200M count=1", "hog.log",
                               memory=64 << 20), sandbox)  # fmt: skip
    for container in (app, hog):
        await client.start_container(container)

    async def running() -> bool:
        return bool((await client.container_status(app)).state == pb.CONTAINER_RUNNING)

    await await_until(running, what="the container running")

    async def greeted() -> bool:
        text = (logs / "app.log").read_text() if (logs / "app.log").exists() else ""
        return " stdout F hello from a container" in text

    await await_until(greeted, what="its first log line, in CRI's format")

    async def killed() -> object:
        status = await client.container_status(hog)
        return status if status.state == pb.CONTAINER_EXITED else None

    oom = await await_until(killed, what="the memory hog ended")
    assert (oom.reason, oom.exit_code) == ("OOMKilled", 137)  # type: ignore[attr-defined]

    await client.stop_container(app, 10)
    stopped = await client.container_status(app)
    assert stopped.state == pb.CONTAINER_EXITED and stopped.exit_code == 0  # SIGTERM, not KILL
    for container in (app, hog):
        await client.remove_container(container)
    await client.stop_sandbox(sandbox_id)
    await client.remove_sandbox(sandbox_id)
    assert await client.sandboxes({"io.kubernetes.pod.uid": "uid-1"}) == []
