"""Request bodies decoded within bounds, before anything is stored or decoded further.

A size check on the bytes is not enough: a 400-byte YAML document of nested aliases ("billion
laughs") expands to gigabytes when stored or encoded, and YAML or JSON nested a thousand deep
overflows the stack of whatever walks it next. So YAML aliases are counted while parsing, and
every decoded body is measured as it would be stored: expanded size, nesting depth, no cycles.
Each refusal says which limit it hit (413 for size, 400 for the rest).
"""

from __future__ import annotations

from typing import Any

import orjson
import yaml

from cloudcore.apiserver import errors
from cloudcore.apiserver.errors import ApiError

MAX_BODY = 3 * 1024 * 1024  # bytes on the wire and expanded (etcd's default request limit)
MAX_DEPTH = 128  # nesting of objects and arrays
MAX_ALIASES = 1000  # YAML alias references in one document


class _Refused(Exception):
    """A bound a body broke; becomes the request's error."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing too many aliases and too deep nesting while it composes
    (before PyYAML itself would recurse past Python's stack)."""

    def __init__(self, stream: bytes) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _Refused(400, f"the YAML body uses more than {MAX_ALIASES} aliases")
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _Refused(400, f"the body nests deeper than {MAX_DEPTH} levels")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _scalar_size(value: Any) -> int:
    return len(value) + 2 if isinstance(value, str) else 8


def measure(value: Any) -> tuple[int, int]:
    """(expanded size in bytes, nesting depth) as the value would be stored, computed once per
    distinct container (aliases share them), without recursion; raises _Refused past a bound
    or for a cycle."""
    sizes: dict[int, tuple[int, int]] = {}
    open_ids: set[int] = set()
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:
        node, closing = stack.pop()
        if not isinstance(node, (dict, list)):
            continue
        key = id(node)
        children = [*node.keys(), *node.values()] if isinstance(node, dict) else node
        if not closing:
            if key in sizes:
                continue
            if key in open_ids:
                raise _Refused(400, "the body refers to itself (a recursive YAML alias)")
            open_ids.add(key)
            stack.append((node, True))
            stack.extend((c, False) for c in children if isinstance(c, (dict, list)))
            continue
        open_ids.discard(key)
        size, depth = 2, 0
        for child in children:
            if isinstance(child, (dict, list)):
                child_size, child_depth = sizes[id(child)]
                size, depth = size + child_size + 1, max(depth, child_depth)
            else:
                size += _scalar_size(child) + 1
        if size > MAX_BODY:
            raise _Refused(413, f"the body expands to more than {MAX_BODY // 2**20} MiB")
        if depth + 1 > MAX_DEPTH:
            raise _Refused(400, f"the body nests deeper than {MAX_DEPTH} levels")
        sizes[key] = (size, depth + 1)
    return sizes.get(id(value), (_scalar_size(value), 0))


def decode(data: bytes, content_type: str) -> Any:
    """The body as JSON values, within the bounds; ApiError (400/413) otherwise."""
    try:
        if "yaml" in content_type:
            loader = _BoundedLoader(data)
            try:
                value = loader.get_single_data()
            finally:
                loader.dispose()
        else:
            value = orjson.loads(data)
        measure(value)
        orjson.dumps(value)  # what cannot be stored back as JSON (lone surrogates, ...) is refused
    except _Refused as exc:
        if exc.code == 413:
            raise ApiError(413, "RequestEntityTooLarge", exc.message) from None
        raise errors.bad_request(exc.message) from None
    except (
        orjson.JSONDecodeError,
        orjson.JSONEncodeError,
        yaml.YAMLError,
        UnicodeDecodeError,
    ) as exc:
        raise errors.bad_request(f"the request body does not decode: {exc}") from exc
    except TypeError as exc:
        raise errors.bad_request(f"the request body holds values JSON cannot: {exc}") from exc
    return value
