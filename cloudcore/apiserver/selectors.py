"""Label and field selectors, as Kubernetes parses and matches them. Pure.

Label selectors: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x,y)`, `a`, `!a`, comma-joined.
Field selectors: `path=value`, `path==value`, `path!=value` on the fields a resource supports.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?\Z")
_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?\Z")


class SelectorError(ValueError):
    """A selector that does not parse (the message says where)."""


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    operator: str  # =, !=, in, notin, exists, !exists
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "exists":
            return present
        if self.operator == "!exists":
            return not present
        if self.operator in ("=", "in"):
            return present and labels[self.key] in self.values
        return not present or labels[self.key] not in self.values  # != and notin


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise SelectorError(f"unbalanced ')' in {text!r}")
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth:
        raise SelectorError(f"unclosed '(' in {text!r}")
    parts.append("".join(current))
    return [p.strip() for p in parts]


def _key(key: str, whole: str) -> str:
    if not _KEY.match(key) or len(key.split("/")[-1]) > 63:
        raise SelectorError(f"invalid label key {key!r} in {whole!r}")
    return key


def _value(value: str, whole: str) -> str:
    if not _VALUE.match(value) or len(value) > 63:
        raise SelectorError(f"invalid label value {value!r} in {whole!r}")
    return value


_SET = re.compile(r"^(\S+)\s+(in|notin)\s*\((.*)\)\Z")


def parse_labels(text: str | None) -> list[Requirement]:
    if not text or not text.strip():
        return []
    requirements = []
    for part in _split_top(text):
        if not part:
            raise SelectorError(f"empty requirement in {text!r}")
        if match := _SET.match(part):
            key, op, values = match.groups()
            items = frozenset(_value(v.strip(), text) for v in values.split(",") if v.strip())
            if not items:
                raise SelectorError(f"{op} needs at least one value in {text!r}")
            requirements.append(Requirement(_key(key, text), op, items))
        elif "!=" in part:
            key, value = part.split("!=", 1)
            requirements.append(
                Requirement(_key(key.strip(), text), "!=", frozenset({_value(value.strip(), text)}))
            )
        elif "=" in part:
            key, value = part.split("==", 1) if "==" in part else part.split("=", 1)
            requirements.append(
                Requirement(_key(key.strip(), text), "=", frozenset({_value(value.strip(), text)}))
            )
        elif part.startswith("!"):
            requirements.append(Requirement(_key(part[1:].strip(), text), "!exists"))
        else:
            requirements.append(Requirement(_key(part, text), "exists"))
    return requirements


def labels_match(requirements: list[Requirement], labels: Mapping[str, str] | None) -> bool:
    return all(r.matches(labels or {}) for r in requirements)


FieldGetter = Callable[[Mapping[str, Any]], str | None]


def _path(path: str) -> FieldGetter:
    keys = path.split(".")

    def get(obj: Mapping[str, Any]) -> str | None:
        value: Any = obj
        for key in keys:
            if not isinstance(value, Mapping):
                return None
            value = value.get(key)
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    return get


BASE_FIELDS = ("metadata.name", "metadata.namespace")


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    field: str
    equal: bool
    value: str


def parse_fields(text: str | None, supported: tuple[str, ...]) -> list[FieldRequirement]:
    """Parse a field selector; fields outside `supported` are an error, as in Kubernetes."""
    if not text or not text.strip():
        return []
    out = []
    for part in _split_top(text):
        if "!=" in part:
            field, value = part.split("!=", 1)
            equal = False
        elif "=" in part:
            field, value = part.split("==", 1) if "==" in part else part.split("=", 1)
            equal = True
        else:
            raise SelectorError(f"invalid field selector requirement {part!r}")
        field = field.strip()
        if field not in supported:
            raise SelectorError(f'field label not supported: "{field}"')
        out.append(FieldRequirement(field, equal, value.strip()))
    return out


def fields_match(requirements: list[FieldRequirement], obj: Mapping[str, Any]) -> bool:
    for requirement in requirements:
        actual = _path(requirement.field)(obj)
        if (actual == requirement.value) != requirement.equal:
            return False
    return True
