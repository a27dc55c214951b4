"""API writes whose answer is not needed, made without decoding it.

The official client turns every answer into its model objects (a Node, a Lease, an Event), which
costs more CPU than the request itself; heartbeats, status writes and Events are frequent and
nobody reads their answers. Errors still raise ApiException.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def write(call: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    response = call(*args, **kwargs, _preload_content=False)
    try:
        response.read()
    finally:
        response.release_conn()
