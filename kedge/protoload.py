"""Our .proto files compiled at import (grpcio-tools): nothing generated is kept in the tree, the
.proto is the single source."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import grpc

_lock = threading.Lock()


def load(directory: Path, proto: str) -> tuple[Any, Any]:
    """(messages, services) of `directory/proto`. grpc finds a .proto through sys.path: the
    directory is put there only while it is compiled."""
    where = str(directory.resolve())
    with _lock:
        sys.path.insert(0, where)
        try:
            return grpc.protos_and_services(proto)
        finally:
            sys.path.remove(where)
