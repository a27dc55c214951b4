"""deploy/cloudcore/ checked by the real kubectl with a server-side dry run against the
embedded API server, and dry runs themselves: every check runs, nothing is stored."""

from __future__ import annotations

import pytest
import yaml

from harness.apiserver import ApiServerProcess
from harness.support import ROOT

DEPLOY = ROOT / "deploy" / "cloudcore"


def test_the_cloudcore_manifests_pass_a_server_dry_run(apiserver: ApiServerProcess) -> None:
    apiserver.kubectl("apply", "-f", str(DEPLOY / "namespace.yaml"))  # for real: a dry run of
    # a namespace and what goes in it fails on a real cluster too (the namespace is not there)
    applied = apiserver.kubectl("apply", "--dry-run=server", "-f", str(DEPLOY))
    lines = applied.stdout.strip().splitlines()
    kinds = {line.split("/")[0] for line in lines}
    assert {"deployment.apps", "service", "serviceaccount", "clusterrole.rbac.authorization.k8s.io",
            "rolebinding.rbac.authorization.k8s.io"} <= kinds, applied.stdout  # fmt: skip
    assert all(line.endswith("(server dry run)") for line in lines), applied.stdout
    got = apiserver.kubectl("get", "deployment", "cloudcore", "-n", "kedge-system", check=False)
    assert got.returncode != 0 and "NotFound" in got.stderr  # a dry run stores nothing
    for document in yaml.safe_load_all((DEPLOY / "cloudcore.yaml").read_text()):
        if document["kind"] == "Deployment":
            args = document["spec"]["template"]["spec"]["containers"][0]["args"]
            assert "--node-limit=1000" in args and any(a.startswith("--identity") for a in args)


def test_a_dry_run_patch_or_delete_changes_nothing(apiserver: ApiServerProcess) -> None:
    apiserver.kubectl(
        "apply", "-f", "-", stdin="apiVersion: v1\nkind: Namespace\nmetadata: {name: dry}\n"
    )
    config = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kept, namespace: dry}\n" \
             "data: {mode: slow}\n"  # fmt: skip
    apiserver.kubectl("apply", "-f", "-", stdin=config)
    before = apiserver.kubectl("get", "cm", "kept", "-n", "dry", "-o", "yaml").stdout
    apiserver.kubectl("patch", "cm", "kept", "-n", "dry", "--dry-run=server", "-p",
                      '{"data": {"mode": "fast"}}')  # fmt: skip
    apiserver.kubectl("delete", "cm", "kept", "-n", "dry", "--dry-run=server")
    assert apiserver.kubectl("get", "cm", "kept", "-n", "dry", "-o", "yaml").stdout == before
    created = apiserver.kubectl("apply", "--dry-run=server", "-o", "yaml", "-f", "-",
                                stdin=config.replace("kept", "never"))  # fmt: skip
    assert yaml.safe_load(created.stdout)["data"] == {"mode": "slow"}
    assert apiserver.kubectl("get", "cm", "never", "-n", "dry", check=False).returncode != 0


@pytest.mark.parametrize("value", ["true", "Some", ""])
def test_an_unknown_dry_run_value_is_400(apiserver: ApiServerProcess, value: str) -> None:
    with apiserver.http() as http:
        answer = http.post(f"/api/v1/namespaces/default/configmaps?dryRun={value}",
                           json={"metadata": {"name": "x"}})  # fmt: skip
    assert answer.status_code == 400 and "dryRun" in answer.json()["message"]
    with apiserver.http() as http:
        assert http.get("/api/v1/namespaces/default/configmaps/x").status_code == 404
