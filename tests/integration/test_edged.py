"""Edged's process runtime with real processes: probes, restart policies and back-off, graceful
termination, image and config errors, ConfigMap volumes that follow their ConfigMap."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from edgecore.edged.manager import Edged
from harness.support import free_port

Obj = dict[str, Any]


class Store:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], Obj] = {}

    def lookup(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self.objects.get((kind, namespace, name))


@pytest.fixture
async def edged(tmp_path: Path) -> AsyncIterator[tuple[Edged, Store]]:
    store = Store()
    runtime = Edged("edge-1", tmp_path / "pods", store.lookup, {"PATH": os.environ["PATH"]},
                    backoff=0.2)  # fmt: skip
    task = asyncio.create_task(runtime.run([]))
    yield runtime, store
    await runtime.close()
    task.cancel()


def pod(name: str, script: str, **spec: Any) -> Obj:
    container = {"name": "main", "image": "kedge/python", "args": ["-c", script]}
    container.update(spec.pop("container", {}))
    spec = {"containers": [container], "terminationGracePeriodSeconds": 5, **spec}
    return {"metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}"}, "spec": spec}


def text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


async def until(check: Callable[[], Any], within: float = 15, what: str = "condition") -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        await asyncio.sleep(0.02)
    raise TimeoutError(f"timed out waiting for {what}")


def main(runtime: Edged, key: str) -> Obj:
    snap = runtime.snapshot(key)
    statuses = (snap or {}).get("status", {}).get("containerStatuses") or [{"state": {}}]
    return dict(statuses[0])  # before the pod starts: no state yet


async def test_restart_policies_and_crash_loop_back_off(edged: tuple[Edged, Store]) -> None:
    runtime, _ = edged
    await runtime.sync([
        pod("never", "raise SystemExit(3)", restartPolicy="Never"),
        pod("onfailure", "pass", restartPolicy="OnFailure"),
        pod("always", "raise SystemExit(1)"),
    ])  # fmt: skip
    await until(lambda: (runtime.snapshot("ns/never") or {}).get("status", {}).get("phase")
                == "Failed", what="Never + exit 3 -> Failed")  # fmt: skip
    assert main(runtime, "ns/never")["state"]["terminated"]["exitCode"] == 3
    await until(lambda: runtime.snapshot("ns/onfailure")["status"]["phase"] == "Succeeded",
                what="OnFailure + exit 0 -> Succeeded")  # fmt: skip
    await until(lambda: main(runtime, "ns/always").get("restartCount", 0) >= 3, what="restarts")
    waiting = await until(lambda: main(runtime, "ns/always")["state"].get("waiting"),
                          what="CrashLoopBackOff")  # fmt: skip
    assert waiting["reason"] == "CrashLoopBackOff" and "back-off" in waiting["message"]
    assert main(runtime, "ns/always")["lastState"]["terminated"]["exitCode"] == 1


async def test_liveness_failure_restarts_and_readiness_gates_ready(
    edged: tuple[Edged, Store], tmp_path: Path
) -> None:
    runtime, _ = edged
    flag, port = tmp_path / "alive", free_port()
    flag.write_text("yes")
    serve = (f"import socket, time; s = socket.socket(); time.sleep(0.5); "
             f"s.bind(('127.0.0.1', {port})); s.listen(); time.sleep(600)")  # fmt: skip
    probes = {
        "livenessProbe": {"exec": {"command": ["test", "-f", str(flag)]}, "periodSeconds": 0.2,
                          "failureThreshold": 2},
        "readinessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 0.2},
    }  # fmt: skip
    await runtime.sync([pod("probed", serve, container=probes)])
    await until(lambda: main(runtime, "ns/probed").get("ready"), what="ready once it listens")
    snap = runtime.snapshot("ns/probed")
    assert snap is not None
    ready = {c["type"]: c["status"] for c in snap["status"]["conditions"]}
    assert ready["Ready"] == "True"
    flag.unlink()  # liveness fails: killed (SIGTERM) and restarted
    await until(lambda: main(runtime, "ns/probed").get("restartCount", 0) >= 1, what="a restart")
    assert main(runtime, "ns/probed")["lastState"]["terminated"]["exitCode"] == 143


async def test_graceful_termination_then_kill(edged: tuple[Edged, Store]) -> None:
    runtime, _ = edged
    stubborn = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "print('up', flush=True); time.sleep(600)")  # fmt: skip
    await runtime.sync([pod("stubborn", stubborn, terminationGracePeriodSeconds=1)])
    await until(lambda: main(runtime, "ns/stubborn")["state"].get("running"), what="running")
    pid = int(main(runtime, "ns/stubborn")["containerID"].removeprefix("process://"))
    log = runtime.log_file("ns/stubborn", "main", previous=False)
    assert log is not None
    await until(lambda: "up" in text(log), what="the container's log")
    started = time.monotonic()
    await runtime.sync([])
    await until(lambda: not psutil.pid_exists(pid), what="the process killed after its grace")
    assert time.monotonic() - started >= 0.9  # it was given its grace period first
    assert runtime.snapshot("ns/stubborn") is None


async def test_image_and_config_errors_then_config_arrives(
    edged: tuple[Edged, Store], tmp_path: Path
) -> None:
    runtime, store = edged
    await runtime.sync([
        {"metadata": {"name": "nginx", "namespace": "ns", "uid": "u-nginx"},
         "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}},
        pod("configured", "import time; time.sleep(600)",
            volumes=[{"name": "cfg", "configMap": {"name": "settings"}}],
            container={"volumeMounts": [{"name": "cfg", "mountPath": "/etc/app"}],
                       "args": ["-c", "import time; time.sleep(600)", "/etc/app/level"]}),
    ])  # fmt: skip
    pulled = await until(lambda: main(runtime, "ns/nginx")["state"].get("waiting", {})
                         .get("reason") == "ErrImagePull" and main(runtime, "ns/nginx"),
                         what="ErrImagePull")  # fmt: skip
    assert "nginx:1.25" in pulled["state"]["waiting"]["message"]
    await until(lambda: main(runtime, "ns/configured")["state"].get("waiting", {}).get("reason")
                == "CreateContainerConfigError", what="missing ConfigMap")  # fmt: skip
    store.objects[("configmap", "ns", "settings")] = {"data": {"level": "debug"}}
    runtime.config_changed()
    await until(lambda: main(runtime, "ns/configured")["state"].get("running"),
                what="started once its ConfigMap arrived")  # fmt: skip
    pid = int(main(runtime, "ns/configured")["containerID"].removeprefix("process://"))
    path = Path(psutil.Process(pid).cmdline()[-1])  # the mount path, rewritten
    assert text(path) == "debug" and str(tmp_path) in str(path)
    store.objects[("configmap", "ns", "settings")] = {"data": {"level": "info"}}
    runtime.config_changed()
    assert text(path) == "info"  # the file follows the ConfigMap
