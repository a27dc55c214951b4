"""Streams to edge pods through the API server, cloudcore's CloudStream and the edge's channel,
with the real kubectl: logs -f, exec (with and without stdin), refusals."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from cloudcore.apiserver.auth import Tokens
from harness.apiserver import kubectl_binary
from harness.cloud import CloudProcess, running_cloud
from harness.support import EdgeProcess, Mosquitto, free_port, port_open, wait_for

TICKER = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"


@pytest.fixture
def pod_on_edge(tmp_path: Path, broker: Mosquitto) -> Iterator[tuple[CloudProcess, EdgeProcess]]:
    """A cloud, an edge node, and pod `ticker` running on it (prints a line every 0.2 s)."""
    with running_cloud(tmp_path / "cloud") as cloud:
        edge = cloud.edge(tmp_path / "edge", broker.url)
        edge.extra += ["--heartbeat", "0.5"]
        edge.start()
        try:
            wait_for(lambda: cloud.get("node", "edge-node-1"), timeout=30, what="the node")
            pod = {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "ticker", "namespace": "default"},
                   "spec": {"nodeName": "edge-node-1", "terminationGracePeriodSeconds": 1,
                            "containers": [{"name": "main", "image": "kedge/host",
                                            "command": ["sh", "-c", TICKER]}]}}  # fmt: skip
            cloud.apiserver.kubectl("apply", "-f", "-", stdin=json.dumps(pod))
            wait_for(lambda: _phase(cloud) == "Running", timeout=30, what="the pod running")
            yield cloud, edge
        finally:
            edge.stop()


def _phase(cloud: CloudProcess) -> str:
    return str(((cloud.get("pod", "ticker") or {}).get("status") or {}).get("phase"))


def _kubectl(cloud: CloudProcess, *args: str) -> list[str]:
    api = cloud.apiserver
    return [kubectl_binary(), "--kubeconfig", str(api.kubeconfig), *args]


def test_logs_follow_receives_lines_written_after_it_started(
    pod_on_edge: tuple[CloudProcess, EdgeProcess],
) -> None:
    cloud, _ = pod_on_edge
    before = cloud.apiserver.kubectl("logs", "ticker").stdout.split("\n")[-2]
    start = int(before.split()[1])
    with subprocess.Popen(_kubectl(cloud, "logs", "-f", "ticker", "--tail=1"),
                          stdout=subprocess.PIPE, text=True) as follower:  # fmt: skip
        try:
            assert follower.stdout is not None
            seen = [follower.stdout.readline() for _ in range(6)]
        finally:
            follower.kill()
    numbers = [int(line.split()[1]) for line in seen]
    assert numbers == list(range(numbers[0], numbers[0] + 6)) and numbers[-1] > start


def test_exec_runs_in_the_pods_environment(pod_on_edge: tuple[CloudProcess, EdgeProcess]) -> None:
    cloud, _ = pod_on_edge
    done = cloud.apiserver.kubectl("exec", "ticker", "--", "sh", "-c", "echo $KEDGE_NODE_NAME")
    assert done.stdout == "edge-node-1\n"
    no_input = cloud.apiserver.kubectl("exec", "ticker", "--", "cat")  # without -i: /dev/null
    assert no_input.stdout == ""
    failed = cloud.apiserver.kubectl("exec", "ticker", "--", "sh", "-c", "echo oops >&2; exit 3",
                                     check=False)  # fmt: skip
    assert failed.returncode == 3 and "oops" in failed.stderr
    missing = cloud.apiserver.kubectl("exec", "ticker", "--", "/no/such/program", check=False)
    assert missing.returncode != 0 and "could not start" in missing.stderr


def test_exec_with_stdin(pod_on_edge: tuple[CloudProcess, EdgeProcess]) -> None:
    cloud, _ = pod_on_edge
    answer = cloud.apiserver.kubectl("exec", "-i", "ticker", "--", "sh", "-c",
                                     "while read line; do echo got $line; done",
                                     stdin="one\ntwo\n")  # fmt: skip
    assert answer.stdout == "got one\ngot two\n"


def test_a_node_cannot_exec_and_a_bad_request_is_refused(
    pod_on_edge: tuple[CloudProcess, EdgeProcess],
) -> None:
    cloud, _ = pod_on_edge
    node_token = Tokens(cloud.apiserver.state / "tokens.json").issue("system:node:edge-node-1")
    refused = subprocess.run(
        _kubectl(cloud, "--token", node_token, "exec", "ticker", "--", "true"),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert refused.returncode != 0 and "Forbidden" in refused.stderr + refused.stdout
    missing = cloud.apiserver.kubectl("exec", "ticker", "-c", "nope", "--", "true", check=False)
    assert missing.returncode != 0 and "not valid" in missing.stderr


async def terminal(cloud: CloudProcess, script: bytes, pod: str = "ticker"
                   ) -> tuple[bytes, dict[str, Any]]:  # fmt: skip
    """A `kubectl exec -it` session spoken directly: v5 frames, a resize, typed input."""
    api = cloud.apiserver
    query = "command=sh&stdin=true&stdout=true&tty=true"
    url = f"wss://127.0.0.1:{api.port}/api/v1/namespaces/default/pods/{pod}/exec?{query}"
    context = ssl.create_default_context(cafile=str(api.state / "pki" / "ca.crt"))
    output, status = b"", {}
    async with connect(
        url,
        ssl=context,
        subprotocols=[Subprotocol("v5.channel.k8s.io")],
        additional_headers={"Authorization": f"Bearer {api.token()}"},
    ) as ws:
        assert ws.subprotocol == "v5.channel.k8s.io"
        await ws.send(b"\x04" + json.dumps({"Width": 100, "Height": 40}).encode())
        await ws.send(b"\x00" + script)
        async for frame in ws:
            assert isinstance(frame, bytes)
            if frame[0] == 1:
                output += frame[1:]
            elif frame[0] == 3:
                status = json.loads(frame[1:])
    return output, status


def test_a_terminal_session_speaks_v5(pod_on_edge: tuple[CloudProcess, EdgeProcess]) -> None:
    cloud, _ = pod_on_edge
    output, status = asyncio.run(terminal(cloud, b"stty size; echo $((6*7)); exit 4\n"))
    assert b"40 100" in output and b"42" in output
    assert status["status"] == "Failure" and status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "4"}]


def test_attach_shows_the_output_from_now_on(pod_on_edge: tuple[CloudProcess, EdgeProcess]) -> None:
    cloud, _ = pod_on_edge
    with subprocess.Popen(_kubectl(cloud, "attach", "ticker"), stdout=subprocess.PIPE,
                          text=True) as attached:  # fmt: skip
        try:
            assert attached.stdout is not None
            lines = [attached.stdout.readline() for _ in range(3)]
        finally:
            attached.kill()
    numbers = [int(line.split()[1]) for line in lines if line.startswith("tick")]
    assert len(numbers) == 3 and numbers == sorted(numbers)
    refused = cloud.apiserver.kubectl("attach", "-i", "ticker", stdin="x\n", check=False)
    assert refused.returncode != 0 and "stdin" in refused.stderr


def test_port_forward_reaches_a_pods_port(
    tmp_path: Path, pod_on_edge: tuple[CloudProcess, EdgeProcess]
) -> None:
    cloud, _ = pod_on_edge
    port = free_port()
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "hello.txt").write_text("hello from the edge\n")
    meta = {"name": "web", "namespace": "default"}
    server = {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
              "spec": {"nodeName": "edge-node-1", "terminationGracePeriodSeconds": 1,
                       "containers": [{"name": "main", "image": "kedge/python", "args": [
                           "-m", "http.server", str(port), "--bind", "127.0.0.1",
                           "--directory", str(tmp_path / "www")]}]}}  # fmt: skip
    cloud.apiserver.kubectl("apply", "-f", "-", stdin=json.dumps(server))
    wait_for(lambda: port_open(port), timeout=30, what="the pod's web server")
    with _forwarding(cloud, port) as (local, _):
        for _ in range(3):  # each request a new forwarded connection
            answer = httpx.get(f"http://127.0.0.1:{local}/hello.txt", timeout=10)
            assert answer.status_code == 200 and answer.text == "hello from the edge\n"
    closed = free_port()  # nothing listens there in the pod
    with _forwarding(cloud, closed) as (local, forward):
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{local}/", timeout=10)
        forward.terminate()
        _, errors = forward.communicate(timeout=10)
    assert f"error forwarding port {closed}" in errors


@contextlib.contextmanager
def _forwarding(cloud: CloudProcess, port: int
                ) -> Iterator[tuple[int, subprocess.Popen[str]]]:  # fmt: skip
    """`kubectl port-forward pod/web LOCAL:port`, listening: (LOCAL, the kubectl process)."""
    local = free_port()
    with subprocess.Popen(
        _kubectl(cloud, "port-forward", "pod/web", f"{local}:{port}"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as forward:
        try:
            wait_for(lambda: port_open(local), timeout=30, what="kubectl listening")
            yield local, forward
        finally:
            forward.terminate()
