"""Our CRI .proto against k8s.io/cri-api's field numbers: expected bytes written by hand from
pkg/apis/runtime/v1/api.proto (tag = field number << 3 | wire type)."""

from __future__ import annotations

from kedge.cri import pb


def test_run_pod_sandbox_request_bytes() -> None:
    request = pb.RunPodSandboxRequest(
        config=pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name="p", uid="u", namespace="n", attempt=1),
            log_directory="/l",
            linux=pb.LinuxPodSandboxConfig(security_context=pb.LinuxSandboxSecurityContext(
                namespace_options=pb.NamespaceOption(network=pb.NODE, pid=pb.CONTAINER)))),
        runtime_handler="runc",
    )  # fmt: skip
    metadata = b"\x0a\x01p\x12\x01u\x1a\x01n\x20\x01"  # name 1, uid 2, namespace 3, attempt 4
    namespaces = b"\x08\x02\x10\x01"  # network 1 = NODE (2), pid 2 = CONTAINER (1)
    security = b"\x0a" + bytes([len(namespaces)]) + namespaces  # namespace_options 1
    linux = b"\x12" + bytes([len(security)]) + security  # security_context 2
    config = (b"\x0a" + bytes([len(metadata)]) + metadata  # metadata 1
              + b"\x1a\x02/l"  # log_directory 3
              + b"\x42" + bytes([len(linux)]) + linux)  # linux 8  # fmt: skip
    expected = b"\x0a" + bytes([len(config)]) + config + b"\x12\x04runc"  # config 1, handler 2
    assert request.SerializeToString() == expected


def test_container_config_fields() -> None:
    config = pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name="c"), image=pb.ImageSpec(image="i"),
        command=["sh"], envs=[pb.KeyValue(key="A", value=b"1")], log_path="c.log",
        linux=pb.LinuxContainerConfig(resources=pb.LinuxContainerResources(
            memory_limit_in_bytes=64)))  # fmt: skip
    expected = (
        b"\x0a\x03\x0a\x01c"  # metadata 1 {name 1}
        b"\x12\x03\x0a\x01i"  # image 2 {image 1}
        b"\x1a\x02sh"  # command 3
        b"\x32\x06\x0a\x01A\x12\x011"  # envs 6 {key 1, value 2}
        b"\x5a\x05c.log"  # log_path 11
        b"\x7a\x04\x0a\x02\x20\x40"  # linux 15 {resources 1 {memory_limit_in_bytes 4}}
    )
    assert config.SerializeToString() == expected
    status = {f.name: f.number for f in pb.ContainerStatus.DESCRIPTOR.fields}
    assert (status["state"], status["exit_code"], status["reason"], status["log_path"]) == (
        3,
        7,
        10,
        15,
    )
