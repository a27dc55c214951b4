"""`kedge apiserver`: the embedded API server on its own, HTTPS with bearer tokens.

State dir layout: `apiserver.db` (SQLite, unless --database gives a URL), `pki/` (CA and
serving certificate), `tokens.json`, and `kubeconfig` for kubectl and the Python client.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

import uvicorn
import yaml

from cloudcore.apiserver.arguments import add_arguments
from cloudcore.apiserver.auth import ADMIN, Tokens
from cloudcore.apiserver.errors import ApiError
from cloudcore.apiserver.http import ApiServer
from cloudcore.apiserver.resources import CRD_KEY
from cloudcore.apiserver.service import ApiService
from cloudcore.apiserver.store import Store
from cloudcore.pki import ensure_certificates, issue_client_certificate
from kedge import certs, webserver
from kedge.logs import setup_logging
from kedge.process import private_state, write_private
from kedge.sealing import Sealer

log = logging.getLogger("kedge.apiserver")
CRDS = Path(__file__).resolve().parents[2] / "crds"


REVISION = "kedge.io/crd-revision"  # on kedge's own CRDs: which edition of them this is
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def load_crds(service: ApiService, directory: Path = CRDS) -> None:
    """Install the CRDs shipped in `crds/` that are absent (standalone mode). A CRD already
    stored is kept unless it is an older revision of kedge's own: one a user applied (upstream
    KubeEdge's, say) is never replaced."""
    kind = service.registry.by_key(CRD_KEY)
    assert kind is not None
    for path in sorted(directory.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if not isinstance(document, dict) or document.get("kind") != "CustomResourceDefinition":
                continue
            name = document["metadata"]["name"]
            try:
                current = service.get(kind, "", name)
            except ApiError:
                service.create(kind, "", document)
                continue
            if not _ours(current):
                log.info("CRD kept as applied (not kedge's own)", extra={"crd": name})
            elif _revision(current) < _revision(document):
                document["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                service.update(kind, "", name, document)
                log.info("CRD upgraded", extra={"crd": name, "revision": _revision(document)})


def _annotations(crd: dict[str, Any]) -> dict[str, Any]:
    return dict((crd.get("metadata") or {}).get("annotations") or {})


def _ours(crd: dict[str, Any]) -> bool:
    """kedge's own CRD: it has our revision, and if someone applied a CRD over it with kubectl,
    what they applied had it too (kubectl apply keeps annotations it did not set)."""
    annotations = _annotations(crd)
    if REVISION not in annotations:
        return False
    applied = annotations.get(LAST_APPLIED)
    if not isinstance(applied, str):
        return True
    try:
        return REVISION in _annotations(json.loads(applied))
    except (ValueError, AttributeError):
        return False


def _revision(crd: dict[str, Any]) -> int:
    raw = _annotations(crd).get(REVISION, "0")
    return int(raw) if isinstance(raw, str) and raw.isdigit() else 0


def write_kubeconfig(path: Path, server: str, token: str | None, ca: Path | None) -> None:
    cluster: dict[str, Any] = {"server": server}
    if ca is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca.read_bytes()).decode()
    user: dict[str, Any] = {"token": token} if token else {}
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kedge", "cluster": cluster}],
        "users": [{"name": ADMIN, "user": user}],
        "contexts": [
            {
                "name": "kedge",
                "context": {"cluster": "kedge", "user": ADMIN, "namespace": "default"},
            }
        ],
        "current-context": "kedge",
    }
    certs.write_private(path, yaml.safe_dump(config, sort_keys=False).encode())


def node_client_certificate(pki: Path) -> tuple[Path, Path]:
    """The certificate the server shows the nodes' stream endpoints (kube-apiserver's kubelet
    client), issued afresh by its CA at every start: only this server may open pod streams."""
    ensure_certificates(pki)
    crt, key = pki / "node-client.crt", pki / "node-client.key"
    certificate, private = issue_client_certificate(pki, "kube-apiserver-kubelet-client")
    write_private(key, private.decode())
    crt.write_bytes(certificate)
    return crt, key


def build(args: argparse.Namespace) -> tuple[ApiService, uvicorn.Config]:
    state: Path = args.state_dir
    private_state(state)
    url = args.database or f"sqlite:///{state / 'apiserver.db'}"
    service = ApiService(Store(url, max(1, args.watch_history), Sealer.in_dir(state)))
    service.bootstrap()
    if not args.no_crds:
        load_crds(service)
    tokens = None if args.insecure else Tokens(state / "tokens.json")
    node_client = None if args.insecure else node_client_certificate(state / "pki")
    app = ApiServer(service, tokens, node_client).app()
    ssl: dict[str, Any] = {}
    if args.insecure:
        write_kubeconfig(state / "kubeconfig", f"http://{args.host}:{args.port}", None, None)
    else:
        ca, crt, key = ensure_certificates(state / "pki")
        ssl = {"ssl_certfile": str(crt), "ssl_keyfile": str(key)}
        assert tokens is not None
        write_kubeconfig(
            state / "kubeconfig",
            f"https://{args.host}:{args.port}",
            tokens.admin_token(state / "kubeconfig"),
            ca,
        )
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=3,  # watches and idle keep-alive connections end promptly
        http="httptools",  # h11 (pure Python) took a fifth more CPU per write
        ws="wsproto",  # accepts `SPDY/3.1+portforward.k8s.io`, not an RFC token, as kubectl sends
        **ssl,
    )
    return service, config


async def serve(args: argparse.Namespace) -> None:
    service, config = build(args)
    server = webserver.Server(config)  # SIGINT/SIGTERM: uvicorn drains and returns
    log.info(
        "API server on %s:%d, kubeconfig %s", args.host, args.port, args.state_dir / "kubeconfig"
    )
    try:
        await server.serve()
    finally:
        await service.settle()
        service.store.close()


def run(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kedge apiserver", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
