"""Certificate pieces both ends of node join need: the CA hash a join token carries, node keys
and CSRs, and when a node certificate is due for rotation."""

from __future__ import annotations

import datetime
import hashlib
import os
import re
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NODE_PREFIX = "system:node:"
ROTATE_AT = 0.8  # share of a certificate's lifetime after which the edge asks for a new one


def ca_hash(ca_pem: bytes) -> str:
    """sha256 of the CA certificate (DER), hex: what a join token pins the cloud's CA with."""
    certificate = x509.load_pem_x509_certificate(ca_pem)
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def node_csr(node: str) -> tuple[bytes, bytes]:
    """(CSR PEM, private key PEM) for `system:node:<node>`; the key never leaves the edge."""
    key = new_key()
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NODE_PREFIX + node)]))
        .sign(key, hashes.SHA256())
    )
    return request.public_bytes(serialization.Encoding.PEM), key_pem(key)


def node_of_certificate(pem: bytes) -> str | None:
    """The node a certificate was issued to, None when it is not a node certificate."""
    names = x509.load_pem_x509_certificate(pem).subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    name = str(names[0].value) if names else ""
    return name.removeprefix(NODE_PREFIX) if name.startswith(NODE_PREFIX) else None


def rotation_due(pem: bytes) -> datetime.datetime:
    """When the edge should replace this certificate (80 % of its lifetime, as kubelet does)."""
    certificate = x509.load_pem_x509_certificate(pem)
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    return start + (end - start) * ROTATE_AT


def expired(pem: bytes, now: datetime.datetime | None = None) -> bool:
    now = now or datetime.datetime.now(datetime.UTC)
    return x509.load_pem_x509_certificate(pem).not_valid_after_utc <= now


def write_private(path: Path, data: bytes) -> None:
    """Write a file atomically, readable by its owner only (keys; certificates beside them)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)


_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")


def node_name_problem(node: str) -> str | None:
    """Why `node` cannot name a Node (a DNS-1123 subdomain, as Kubernetes wants), or None."""
    if len(node) > 253 or not _SUBDOMAIN.match(node):
        return (f"node name {node!r} is not a DNS-1123 subdomain (at most 253 lowercase "
                "letters, digits, '-' and '.', starting and ending alphanumeric)")  # fmt: skip
    return None
