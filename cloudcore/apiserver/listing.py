"""List options: selectors, limit and the continue token of a paged list."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import orjson

from cloudcore.apiserver import errors
from cloudcore.apiserver.selectors import FieldRequirement, Requirement, fields_match, labels_match

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ListOptions:
    labels: list[Requirement] = field(default_factory=list)
    fields: list[FieldRequirement] = field(default_factory=list)
    limit: int = 0
    continue_token: str = ""

    def matches(self, obj: Obj, namespace: str | None = None) -> bool:
        meta = obj["metadata"]
        return (
            (namespace is None or meta.get("namespace", "") == namespace)
            and labels_match(self.labels, meta.get("labels"))
            and fields_match(self.fields, obj)
        )


def encode_continue(rv: int, after: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"rv": rv, "after": list(after)})).decode()


def decode_continue(token: str) -> tuple[str, str]:
    """(namespace, name) the next page starts after; 400 for a token this server did not make."""
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token.encode()))
        after = data["after"]
        return str(after[0]), str(after[1])
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise errors.bad_request(f"invalid continue token: {token!r}") from exc


def _position(obj: Obj) -> tuple[str, str]:
    return obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def page(items: list[Obj], rv: int, options: ListOptions) -> tuple[list[Obj], str]:
    """The items of the page `options` asks for, and the token of the next one ("" if none)."""
    if options.continue_token:
        after = decode_continue(options.continue_token)
        items = [i for i in items if _position(i) > after]
    chosen = [i for i in items if options.matches(i)]
    if options.limit and len(chosen) > options.limit:
        chosen = chosen[: options.limit]
        last = chosen[-1]["metadata"]
        return chosen, encode_continue(rv, (last.get("namespace", ""), last["name"]))
    return chosen, ""
