"""KubeEdge's DMI v1beta1 (device management over gRPC on Unix sockets), from our own
`dmi_v1beta1.proto`, whose names and field numbers are upstream's.

`pb` holds the messages, `services` the stubs, servicers and `add_*_to_server` helpers.
"""

from __future__ import annotations

from pathlib import Path

from kedge.protoload import load

pb, services = load(Path(__file__).parent, "dmi_v1beta1.proto")
_MANAGER = pb.DESCRIPTOR.services_by_name["DeviceManagerService"]
# DeviceManagerService's methods: (gRPC path, request type), in the .proto's order
MANAGER_METHODS = [(f"/{_MANAGER.full_name}/{m.name}", m.input_type.name) for m in _MANAGER.methods]
