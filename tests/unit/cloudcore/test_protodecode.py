"""Kubernetes protobuf decoded by the field numbers of k8s.io/api's generated.proto: bytes
kubectl 1.32 sent, and hand-built messages whose numbers are read off the upstream definitions."""

from __future__ import annotations

import pytest

from cloudcore.apiserver.protodecode import Unsupported, decode, decode_body
from cloudcore.apiserver.protowire import ProtoError

# `kubectl create configmap cm1 --from-literal=mode=fast`, as kubectl -v=8 dumped it
KUBECTL_CONFIGMAP = bytes.fromhex(
    "6b3873000a0f0a0276311209436f6e6669674d61701223"
    "0a130a03636d3112001a00220"
    "02a00320038004200120c0a046d6f646512046661737"
    "41a002200"
)


def _varint(value: int) -> bytes:
    out, value = bytearray(), value & (1 << 64) - 1  # negative: 64-bit two's complement
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _len(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def test_kubectls_configmap_bytes() -> None:
    assert decode_body(KUBECTL_CONFIGMAP) == {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cm1", "creationTimestamp": None},  # Go's zero Time is null
        "data": {"mode": "fast"},
    }  # fmt: skip


def test_deployment_fields_by_their_upstream_numbers() -> None:
    strategy = _len(1, b"RollingUpdate") + _len(2, _len(1, _varint_field(1, 1) + _len(3, b"25%"))
                                                 + _len(2, _varint_field(2, 0)))  # fmt: skip
    container = (
        _len(1, b"app")
        + _len(2, b"busybox")
        + _len(8, _len(2, _len(1, b"cpu") + _len(2, _len(1, b"250m"))))
    )
    pod = _len(2, _len(2, container) + _varint_field(4, (1 << 64) - 5))  # terminationGrace -5
    spec = (_varint_field(1, 0) + _len(2, _len(1, _len(1, b"app") + _len(2, b"web")))
            + _len(3, pod) + _len(4, strategy) + _varint_field(7, 0))  # fmt: skip
    meta = _len(1, b"web") + _len(8, _varint_field(1, 1_700_000_000))
    assert decode("Deployment", _len(1, meta) + _len(2, spec)) == {
        "metadata": {"name": "web", "creationTimestamp": "2023-11-14T22:13:20Z"},
        "spec": {
            "replicas": 0,  # a pointer: sent, so kept although zero
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"spec": {
                "containers": [{"name": "app", "image": "busybox",
                                "resources": {"requests": {"cpu": "250m"}}}],
                "terminationGracePeriodSeconds": -5}},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 0}},
        },  # paused=false (field 7, omitempty) is left out, as Go leaves it out
    }  # fmt: skip


def test_embedded_structs_secret_bytes_and_micro_time() -> None:
    volume = _len(1, b"cfg") + _len(2, _len(19, _len(1, _len(1, b"settings"))))  # configMap
    assert decode("Volume", volume) == {"name": "cfg", "configMap": {"name": "settings"}}
    secret = _len(2, _len(1, b"k") + _len(2, b"\x00\xff"))
    assert decode("Secret", secret) == {"data": {"k": "AP8="}}
    lease = _len(4, _varint_field(1, 1_700_000_000) + _varint_field(2, 123_456_000))
    assert decode("LeaseSpec", lease) == {"renewTime": "2023-11-14T22:13:20.123456Z"}


def test_delete_options_and_repeated_strings() -> None:
    body = (
        b"k8s\x00"
        + _len(1, _len(1, b"v1") + _len(2, b"DeleteOptions"))
        + _len(2, _varint_field(1, 0) + _len(4, b"Foreground") + _len(5, b"All"))
    )
    assert decode_body(body) == {"apiVersion": "v1", "kind": "DeleteOptions",
                                 "gracePeriodSeconds": 0, "propagationPolicy": "Foreground",
                                 "dryRun": ["All"]}  # fmt: skip


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"k8s\x00",
        b"k8s\x00" + _len(1, _len(1, b"v1")),  # no kind
        KUBECTL_CONFIGMAP[:-1],
        KUBECTL_CONFIGMAP.replace(b"ConfigMap", b"ConfigMaq"),  # not a v1 kind
        b"k8s\x00" + _len(1, _len(1, b"v1") + _len(2, b"Pod")) + _len(2, _varint_field(3, 1)),
        b"k8s\x00" + _len(1, _len(1, b"v1") + _len(2, b"Pod")) + _len(3, b"gzip"),
    ],
)
def test_malformed_bodies_raise_proto_error(body: bytes) -> None:
    with pytest.raises(ProtoError):
        decode_body(body)


def test_a_kind_not_taken_as_protobuf_is_unsupported_not_malformed() -> None:
    body = b"k8s\x00" + _len(1, _len(1, b"batch/v1") + _len(2, b"Job")) + _len(2, b"")
    with pytest.raises(Unsupported):
        decode_body(body)
