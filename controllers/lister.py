"""Core API list calls as plain dicts, for `Informer`.

The official client turns core objects into its model classes; the controllers work on the
JSON the API server sent (as they do for custom objects), so lists are read raw. Watches decode
to dicts by themselves: `watch.Watch` only builds models for calls documented to return them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson


def raw_lister(call: Callable[..., Any], **fixed: Any) -> Callable[..., Any]:
    def list_objects(**kwargs: Any) -> Any:
        if kwargs.get("watch"):
            return call(**fixed, **kwargs)
        response = call(**fixed, **kwargs, _preload_content=False)
        try:
            return orjson.loads(response.data)
        finally:
            response.release_conn()

    return list_objects
