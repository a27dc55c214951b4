"""Node join against a real cloudcore: `kedge token create`, the join service on its own port,
edgecore joining with the token, refusals with clear reasons, and certificate rotation."""

from __future__ import annotations

import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from harness.apiserver import ApiServerProcess
from harness.cloud import CloudProcess
from harness.support import ROOT, SAMPLES, EdgeProcess, Mosquitto, wait_for
from kedge.certs import node_csr

DEV = "default/thermostat-1"


def _join(cloud: CloudProcess, token: str | None, body: bytes) -> httpx.Response:
    ca = httpx.get(f"{cloud.join_url}/ca.crt", verify=False, timeout=5).content  # noqa: S501
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    verify = ssl.create_default_context(cadata=ca.decode())
    return httpx.post(f"{cloud.join_url}/edge.crt", content=body, headers=headers,
                      verify=verify, timeout=10)  # fmt: skip


def test_edge_with_a_forged_token_is_refused_and_says_why(
    tmp_path: Path, cloud: CloudProcess, broker: Mosquitto
) -> None:
    pinned, header, claims, _signature = cloud.token().split(".")
    forged = f"{pinned}.{header}.{claims}.{'A' * 43}"
    edge = cloud.edge(tmp_path / "edge", broker.url)
    edge.extra[-1] = forged
    done = edge.run_to_exit()
    assert done.returncode == 2
    assert "signature is invalid" in done.stderr
    assert not (tmp_path / "edge" / "certs" / "node.crt").exists()


def test_edge_refuses_a_join_service_whose_ca_is_not_the_tokens(
    tmp_path: Path, cloud: CloudProcess, broker: Mosquitto
) -> None:
    token = cloud.token()
    edge = cloud.edge(tmp_path / "edge", broker.url)
    edge.extra[-1] = "0" * 64 + token[64:]  # a token for some other cloud's CA
    done = edge.run_to_exit()
    assert done.returncode == 2
    assert "is not the one the token was made for" in done.stderr


def test_join_service_refuses_reuse_by_another_node_and_bad_requests(cloud: CloudProcess) -> None:
    token = cloud.token()
    first = _join(cloud, token, node_csr("node-a")[0])
    assert first.status_code == 200
    issued = x509.load_pem_x509_certificate(first.content)
    assert issued.subject.rfc4514_string() == "CN=system:node:node-a"
    again = _join(cloud, token, node_csr("node-a")[0])
    assert again.status_code == 200  # the same node may join again
    other = _join(cloud, token, node_csr("node-b")[0])
    assert other.status_code == 403
    assert "already used by node 'node-a'" in other.json()["reason"]
    bound = _join(cloud, cloud.token("--node", "node-c"), node_csr("node-d")[0])
    assert bound.status_code == 403 and "for node 'node-c'" in bound.json()["reason"]
    assert _join(cloud, None, node_csr("node-e")[0]).status_code == 401
    garbage = _join(cloud, cloud.token(), b"not a csr")
    assert garbage.status_code == 400 and "certificate signing request" in garbage.json()["reason"]
    assert _join(cloud, cloud.token(), b"x" * 100_000).status_code == 413


@pytest.mark.parametrize("name", ["../../etc/passwd", "evil\nname", "x/y", " ", "Node-A", "-a"])
def test_join_refuses_names_that_cannot_name_a_node(cloud: CloudProcess, name: str) -> None:
    refused = _join(cloud, cloud.token(), node_csr(name)[0])
    assert refused.status_code == 400 and "DNS-1123" in refused.json()["reason"], refused.text


def test_a_token_not_made_for_a_node_cannot_take_an_existing_nodes_name(
    cloud: CloudProcess,
) -> None:
    with cloud.apiserver.http() as admin:
        assert admin.post("/api/v1/nodes", json={"metadata": {"name": "node-b"}}).is_success
    taken = _join(cloud, cloud.token(), node_csr("node-b")[0])
    assert taken.status_code == 403
    assert taken.json()["reason"] == (
        "node 'node-b' exists already; joining as it needs a token made with --node node-b "
        "(or --allow-rejoin)"
    )
    assert _join(cloud, cloud.token("--node", "node-b"), node_csr("node-b")[0]).status_code == 200
    assert _join(cloud, cloud.token("--allow-rejoin"), node_csr("node-b")[0]).status_code == 200
    assert _join(cloud, cloud.token(), node_csr("node-new")[0]).status_code == 200  # a new name
    # a node that joined is known as existing even before it registers its Node
    assert _join(cloud, cloud.token(), node_csr("node-new")[0]).status_code == 403


def test_cloudcore_health_lists_no_failing_tasks(cloud: CloudProcess) -> None:
    health = httpx.get(f"{cloud.join_url}/healthz", verify=False, timeout=5)  # noqa: S501
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "failingTasks": {}}


def test_token_create_refuses_a_bad_node_name(cloud: CloudProcess) -> None:
    made = subprocess.run(
        [sys.executable, "-m", "kedge", "token", "create", "--state-dir", str(cloud.state),
         "--node", "x/y"], capture_output=True, text=True, cwd=ROOT, timeout=30,
    )  # fmt: skip
    assert made.returncode == 2 and "DNS-1123" in made.stderr


def test_expired_token_is_refused(cloud: CloudProcess) -> None:
    token = cloud.token("--ttl", "1s")
    refused = wait_for(
        lambda: (r := _join(cloud, token, node_csr("late")[0])).status_code == 403 and r,
        timeout=10, what="the token to expire",
    )  # fmt: skip
    assert "expired" in refused.json()["reason"]


def test_token_create_without_cloud_state_explains(tmp_path: Path) -> None:
    made = subprocess.run(
        [sys.executable, "-m", "kedge", "token", "create", "--state-dir", str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT, timeout=30,
    )  # fmt: skip
    assert made.returncode == 2 and "no CA in" in made.stderr


@pytest.fixture
def short_lived(tmp_path: Path) -> Iterator[CloudProcess]:
    """A cloud whose node certificates last 15 s (edges rotate them after 12 s)."""
    apiserver = ApiServerProcess(tmp_path / "apiserver").start()
    cloud = CloudProcess(apiserver, tmp_path / "cloudcore", extra=("--node-cert-validity", "15s"))
    yield cloud.start()
    cloud.stop()
    apiserver.stop()


def test_node_certificate_rotates_over_the_channel_and_the_new_one_works(
    tmp_path: Path, short_lived: CloudProcess, broker: Mosquitto
) -> None:
    cloud = short_lived
    edge = cloud.edge(tmp_path / "edge", broker.url).start()
    certs = tmp_path / "edge" / "certs"
    try:
        wait_for((certs / "node.crt").exists, timeout=30, what="the node joined")
        first = x509.load_pem_x509_certificate((certs / "node.crt").read_bytes())
        wait_for(
            lambda: x509.load_pem_x509_certificate((certs / "node.crt").read_bytes()).serial_number
            != first.serial_number,
            timeout=30, what="a rotated node certificate",
        )  # fmt: skip
        wait_for(lambda: "node certificate rotated" in edge.log(), timeout=10,
                 what="the rotation logged")  # fmt: skip
        edge.stop()
        tokenless = EdgeProcess(  # restarted without a token: only the rotated certificate works
            tmp_path / "edge", mqtt_url=broker.url, http_port=edge.http_port,
            extra=["--cloud", f"wss://127.0.0.1:{cloud.port}", "--join", cloud.join_url],
        ).start()  # fmt: skip
        cloud.apiserver.kubectl("apply", "-f", str(SAMPLES / "modbus.yaml"))
        wait_for(lambda: tokenless.get(f"/v1/devices/{DEV}").status_code == 200, timeout=30,
                 what="a device delivered over the rotated certificate")  # fmt: skip
        tokenless.stop()
    finally:
        edge.stop()
