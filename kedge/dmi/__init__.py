"""KubeEdge's DMI v1beta1 (device management over gRPC on Unix sockets), compiled at import from
our own `dmi_v1beta1.proto`, whose names and field numbers are upstream's.

`pb` holds the messages, `services` the stubs, servicers and `add_*_to_server` helpers. Nothing
generated is kept in the tree: the .proto is the single source.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import grpc

PROTO = "dmi_v1beta1.proto"
_HERE = str(Path(__file__).resolve().parent)
_lock = threading.Lock()


def _load() -> tuple[Any, Any]:
    """grpc finds a .proto through sys.path: ours is put there only while it is compiled."""
    with _lock:
        sys.path.insert(0, _HERE)
        try:
            return grpc.protos_and_services(PROTO)
        finally:
            sys.path.remove(_HERE)


pb, services = _load()
