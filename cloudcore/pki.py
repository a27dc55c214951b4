"""The cluster CA: serving certificates for loopback and client certificates for nodes."""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kedge.certs import NODE_PREFIX, key_pem, new_key, node_name_problem

VALID = datetime.timedelta(days=3650)
NODE_VALID = datetime.timedelta(days=365)  # as KubeEdge's; rotated by the edge at 80 %


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.write_bytes(data)
    if private:
        os.chmod(path, 0o600)


def ensure_certificates(
    directory: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")
) -> tuple[Path, Path, Path]:
    """(ca.crt, server.crt, server.key) under `directory`, created when missing. A CA already
    there (shared by cloudcore replicas, mounted from a Secret) signs the serving certificate."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_crt, ca_key = directory / "ca.crt", directory / "ca.key"
    crt, key = directory / "server.crt", directory / "server.key"
    if crt.exists() and key.exists() and ca_crt.exists():
        return ca_crt, crt, key
    if ca_crt.exists() and ca_key.exists():
        authority, authority_key = _load_authority(directory)
    else:
        authority, authority_key = _new_authority()
        _write(ca_key, key_pem(authority_key), private=True)
        _write(ca_crt, authority.public_bytes(serialization.Encoding.PEM))
    server_key = new_key()
    server = _serving(authority, authority_key, server_key, hosts)
    _write(key, key_pem(server_key), private=True)
    _write(crt, server.public_bytes(serialization.Encoding.PEM))
    return ca_crt, crt, key


def _new_authority() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    now = datetime.datetime.now(datetime.UTC)
    authority_key = new_key()
    authority_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kedge-ca")])
    authority = (
        x509.CertificateBuilder()
        .subject_name(authority_name)
        .issuer_name(authority_name)
        .public_key(authority_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALID)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(authority_key, hashes.SHA256())
    )  # fmt: skip
    return authority, authority_key


def _serving(authority: x509.Certificate, authority_key: ec.EllipticCurvePrivateKey,
             server_key: ec.EllipticCurvePrivateKey, hosts: tuple[str, ...]
             ) -> x509.Certificate:  # fmt: skip
    now = datetime.datetime.now(datetime.UTC)
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kedge-apiserver")]))
        .issuer_name(authority.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALID)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(authority_key, hashes.SHA256())
    )


class CsrError(ValueError):
    """A certificate request the cloud will not sign (the message says why)."""


def _authority(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ensure_certificates(directory)
    return _load_authority(directory)


def _load_authority(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    authority = x509.load_pem_x509_certificate((directory / "ca.crt").read_bytes())
    authority_key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), None)
    assert isinstance(authority_key, ec.EllipticCurvePrivateKey)
    return authority, authority_key


def _client_certificate(
    directory: Path,
    public_key: ec.EllipticCurvePublicKey,
    common_name: str,
    validity: datetime.timedelta,
) -> bytes:
    authority, authority_key = _authority(directory)
    now = datetime.datetime.now(datetime.UTC)
    skew = min(datetime.timedelta(minutes=5), validity / 10)  # clocks differ a little
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(authority.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - skew)
        .not_valid_after(now + validity)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .sign(authority_key, hashes.SHA256())
    )  # fmt: skip
    return certificate.public_bytes(serialization.Encoding.PEM)


def issue_client_certificate(
    directory: Path, common_name: str, validity: datetime.timedelta = NODE_VALID
) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) for a client, signed by the CA in `directory` (tools, tests)."""
    key = new_key()
    return _client_certificate(directory, key.public_key(), common_name, validity), key_pem(key)


@dataclass(frozen=True, slots=True)
class NodeCsr:
    node: str
    public_key: ec.EllipticCurvePublicKey


def read_node_csr(csr_pem: bytes) -> NodeCsr:
    """The node a CSR asks a certificate for; CsrError when it is not one we would sign."""
    try:
        request = x509.load_pem_x509_csr(csr_pem)
    except ValueError as exc:
        raise CsrError(f"not a PEM certificate signing request: {exc}") from exc
    if not request.is_signature_valid:
        raise CsrError("the CSR's signature does not match its key")
    names = request.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    name = str(names[0].value) if len(names) == 1 else ""
    node = name.removeprefix(NODE_PREFIX)
    if not name.startswith(NODE_PREFIX) or not node:
        raise CsrError(f"the CSR's subject must be CN={NODE_PREFIX}<node>, not {name!r}")
    problem = node_name_problem(node)
    if problem is not None:
        raise CsrError(problem)
    public_key = request.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise CsrError("the CSR's key must be an EC key (P-256)")
    return NodeCsr(node, public_key)


def sign_node_csr(
    directory: Path, csr: NodeCsr, validity: datetime.timedelta = NODE_VALID
) -> bytes:
    """The node's certificate (PEM) for a CSR read (and authorised) before."""
    return _client_certificate(directory, csr.public_key, NODE_PREFIX + csr.node, validity)
