"""CRI v1 calls on a runtime's socket (containerd's, or any CRI runtime's), as kubelet makes them.

Every call has a deadline; errors are grpc.aio.AioRpcError with the runtime's reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc

from kedge.cri import pb, services

CALL_TIMEOUT = 60.0  # seconds; image pulls get longer
PULL_TIMEOUT = 600.0


def sandbox_config(
    name: str,
    namespace: str,
    uid: str,
    log_directory: str,
    *,
    host_network: bool,
    labels: Mapping[str, str] | None = None,
    cgroup_parent: str = "",
    attempt: int = 0,
) -> Any:
    """A pod's sandbox. A host-network pod gets no hostname (without its own UTS namespace a
    runtime cannot set one); PID namespaces are per container, as kubelet asks by default."""
    namespaces = pb.NamespaceOption(
        network=pb.NODE if host_network else pb.POD, pid=pb.CONTAINER, ipc=pb.POD
    )
    return pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, namespace=namespace, uid=uid, attempt=attempt),
        hostname="" if host_network else name[:63],
        log_directory=log_directory,
        labels={
            "io.kubernetes.pod.name": name,
            "io.kubernetes.pod.namespace": namespace,
            "io.kubernetes.pod.uid": uid,
            **(labels or {}),
        },
        linux=pb.LinuxPodSandboxConfig(
            cgroup_parent=cgroup_parent,
            security_context=pb.LinuxSandboxSecurityContext(namespace_options=namespaces),
        ),
    )


class CriClient:
    def __init__(self, endpoint: str) -> None:
        """`endpoint`: unix:///path (KubeEdge's and kubelet's form) or a plain path."""
        path = endpoint.removeprefix("unix://").removeprefix("unix:")
        self.channel = grpc.aio.insecure_channel(f"unix:{path}")
        self.runtime = services.RuntimeServiceStub(self.channel)
        self.images = services.ImageServiceStub(self.channel)

    async def version(self) -> Any:
        return await self.runtime.Version(pb.VersionRequest(version="v1"), timeout=CALL_TIMEOUT)

    async def image_present(self, image: str) -> bool:
        reply = await self.images.ImageStatus(
            pb.ImageStatusRequest(image=pb.ImageSpec(image=image)), timeout=CALL_TIMEOUT
        )
        return bool(reply.image.id)

    async def pull(self, image: str, sandbox: Any) -> str:
        reply = await self.images.PullImage(
            pb.PullImageRequest(image=pb.ImageSpec(image=image), sandbox_config=sandbox),
            timeout=PULL_TIMEOUT,
        )
        return str(reply.image_ref)

    async def run_sandbox(self, config: Any) -> str:
        reply = await self.runtime.RunPodSandbox(
            pb.RunPodSandboxRequest(config=config), timeout=CALL_TIMEOUT
        )
        return str(reply.pod_sandbox_id)

    async def sandbox_status(self, sandbox_id: str) -> Any:
        request = pb.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id)
        return (await self.runtime.PodSandboxStatus(request, timeout=CALL_TIMEOUT)).status

    async def stop_sandbox(self, sandbox_id: str) -> None:
        await self.runtime.StopPodSandbox(
            pb.StopPodSandboxRequest(pod_sandbox_id=sandbox_id), timeout=CALL_TIMEOUT
        )

    async def remove_sandbox(self, sandbox_id: str) -> None:
        await self.runtime.RemovePodSandbox(
            pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id), timeout=CALL_TIMEOUT
        )

    async def sandboxes(self, labels: Mapping[str, str]) -> list[Any]:
        request = pb.ListPodSandboxRequest(filter=pb.PodSandboxFilter(label_selector=labels))
        return list((await self.runtime.ListPodSandbox(request, timeout=CALL_TIMEOUT)).items)

    async def create_container(self, sandbox_id: str, config: Any, sandbox: Any) -> str:
        request = pb.CreateContainerRequest(
            pod_sandbox_id=sandbox_id, config=config, sandbox_config=sandbox
        )
        return str((await self.runtime.CreateContainer(request, timeout=CALL_TIMEOUT)).container_id)

    async def start_container(self, container_id: str) -> None:
        await self.runtime.StartContainer(
            pb.StartContainerRequest(container_id=container_id), timeout=CALL_TIMEOUT
        )

    async def container_status(self, container_id: str) -> Any:
        request = pb.ContainerStatusRequest(container_id=container_id)
        return (await self.runtime.ContainerStatus(request, timeout=CALL_TIMEOUT)).status

    async def stop_container(self, container_id: str, grace: int) -> None:
        """SIGTERM (the image's stop signal), SIGKILL after `grace` seconds."""
        request = pb.StopContainerRequest(container_id=container_id, timeout=grace)
        await self.runtime.StopContainer(request, timeout=CALL_TIMEOUT + grace)

    async def remove_container(self, container_id: str) -> None:
        await self.runtime.RemoveContainer(
            pb.RemoveContainerRequest(container_id=container_id), timeout=CALL_TIMEOUT
        )

    async def containers(self, sandbox_id: str) -> list[Any]:
        request = pb.ListContainersRequest(filter=pb.ContainerFilter(pod_sandbox_id=sandbox_id))
        return list((await self.runtime.ListContainers(request, timeout=CALL_TIMEOUT)).containers)

    async def close(self) -> None:
        await self.channel.close()
