"""openAPIV3Schema validation for custom resources, with defaulting and pruning. Pure.

Covers the structural-schema keywords CRDs use: type, properties, required, items,
additionalProperties, enum, minimum/maximum (and exclusive), minLength/maxLength, pattern,
minItems/maxItems, nullable, default, x-kubernetes-preserve-unknown-fields and
x-kubernetes-int-or-string. Fields the schema does not know are pruned, as Kubernetes does;
they are reported so `fieldValidation=Strict` can refuse them.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ROOT_FIELDS = frozenset({"apiVersion", "kind", "metadata"})


@dataclass
class Result:
    value: Any
    errors: list[tuple[str, str]] = field(default_factory=list)  # (field path, message)
    unknown: list[str] = field(default_factory=list)  # field paths pruned


def _type_ok(schema: Mapping[str, Any], value: Any) -> bool:
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(value, (int, str)) and not isinstance(value, bool)
    kind = schema.get("type")
    if kind is None:
        return True
    return {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
    }.get(str(kind), lambda v: True)(value)


def _check_scalar(schema: Mapping[str, Any], value: Any, path: str, out: Result) -> None:
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(f'"{v}"' if isinstance(v, str) else str(v) for v in schema["enum"])
        out.errors.append((path, f"Unsupported value: {value!r}: supported values: {allowed}"))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and (value < low or (schema.get("exclusiveMinimum") and value == low)):
            out.errors.append(
                (path, f"Invalid value: {value}: should be greater than or equal to {low}")
            )
        if high is not None and (
            value > high or (schema.get("exclusiveMaximum") and value == high)
        ):
            out.errors.append(
                (path, f"Invalid value: {value}: should be less than or equal to {high}")
            )
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            out.errors.append(
                (path, f"Invalid value: should be at least {schema['minLength']} chars long")
            )
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            out.errors.append((path, f"Too long: may not be longer than {schema['maxLength']}"))
        pattern = schema.get("pattern")
        if pattern and not re.search(pattern, value):
            out.errors.append((path, f"Invalid value: {value!r}: should match '{pattern}'"))


def _walk(schema: Mapping[str, Any], value: Any, path: str, out: Result, root: bool) -> Any:
    if value is None:
        if not schema.get("nullable"):
            out.errors.append((path, "Invalid value: null: must not be null"))
        return value
    if not _type_ok(schema, value):
        out.errors.append(
            (path, f"Invalid value: {type(value).__name__}: must be of type {schema.get('type')}")
        )
        return value
    _check_scalar(schema, value, path, out)
    if isinstance(value, dict):
        return _object(schema, value, path, out, root)
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            out.errors.append(
                (path, f"Invalid value: should have at least {schema['minItems']} items")
            )
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            out.errors.append((path, f"Too many: must have at most {schema['maxItems']} items"))
        items = schema.get("items")
        if isinstance(items, Mapping):
            return [_walk(items, v, f"{path}[{n}]", out, False) for n, v in enumerate(value)]
    return value


def _object(
    schema: Mapping[str, Any], value: dict[str, Any], path: str, out: Result, root: bool
) -> dict[str, Any]:
    properties: Mapping[str, Any] = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
    result: dict[str, Any] = {}
    for key, sub in properties.items():
        if key not in value and isinstance(sub, Mapping) and "default" in sub:
            value = {**value, key: copy.deepcopy(sub["default"])}
    for key, item in value.items():
        child = f"{path}.{key}" if path else key
        if root and key in ROOT_FIELDS:
            result[key] = item
        elif key in properties:
            result[key] = _walk(properties[key], item, child, out, False)
        elif isinstance(additional, Mapping):
            result[key] = _walk(additional, item, child, out, False)
        elif (
            additional is True
            or preserve
            or (not properties and additional is None and not schema.get("type"))
        ):
            result[key] = item
        else:
            out.unknown.append(child)
    for key in schema.get("required") or []:
        if key not in result:
            out.errors.append((f"{path}.{key}" if path else key, "Required value"))
    return result


def validate(schema: Mapping[str, Any] | None, obj: dict[str, Any]) -> Result:
    """Defaulted and pruned copy of `obj`, its errors and the unknown fields pruned."""
    if not schema:
        return Result(obj)
    out = Result(None)
    out.value = _walk(schema, obj, "", out, True)
    return out


TYPES = frozenset({"object", "array", "string", "integer", "number", "boolean"})
_COUNTS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties")
_FLAGS = ("nullable", "exclusiveMinimum", "exclusiveMaximum", "x-kubernetes-int-or-string",
          "x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource")  # fmt: skip


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_keywords(schema: Mapping[str, Any], path: str) -> list[tuple[str, str]]:
    problems = []
    if "type" in schema and schema["type"] not in TYPES:
        problems.append((f"{path}.type", f"Unsupported value: {schema['type']!r}"))
    for key in ("minimum", "maximum", "multipleOf"):
        if key in schema and not _is_number(schema[key]):
            problems.append((f"{path}.{key}", f"Invalid value: {schema[key]!r}: must be a number"))
    for key in _COUNTS:
        value = schema.get(key)
        if key in schema and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            problems.append((f"{path}.{key}", f"Invalid value: {value!r}: must be a count"))
    for key in _FLAGS:
        if key in schema and not isinstance(schema[key], bool):
            problems.append((f"{path}.{key}", "Invalid value: must be true or false"))
    if "pattern" in schema:
        try:
            re.compile(str(schema["pattern"]))
        except re.error as exc:
            problems.append((f"{path}.pattern", f"Invalid value: {schema['pattern']!r}: {exc}"))
    if "enum" in schema and not isinstance(schema["enum"], list):
        problems.append((f"{path}.enum", "Invalid value: must be a list"))
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        problems.append((f"{path}.required", "Invalid value: must be a list of field names"))
    return problems


def check_schema(schema: Any, path: str = "openAPIV3Schema") -> list[tuple[str, str]]:
    """What is wrong with a CRD's schema (a regex that does not compile, a minimum that is not
    a number, ...), so that a bad CRD is refused at create instead of failing every object."""
    if not isinstance(schema, Mapping):
        return [(path, "Invalid value: must be an object")]
    problems = _check_keywords(schema, path)
    properties = schema.get("properties", {})
    if not isinstance(properties, Mapping):
        problems.append((f"{path}.properties", "Invalid value: must be an object"))
    else:
        for name, sub in properties.items():
            problems += check_schema(sub, f"{path}.properties[{name}]")
    for key in ("items", "not"):
        if key in schema:
            problems += check_schema(schema[key], f"{path}.{key}")
    if isinstance(schema.get("additionalProperties"), Mapping):
        problems += check_schema(schema["additionalProperties"], f"{path}.additionalProperties")
    elif "additionalProperties" in schema and not isinstance(schema["additionalProperties"], bool):
        problems.append((f"{path}.additionalProperties", "Invalid value: must be a schema or bool"))
    for key in ("allOf", "anyOf", "oneOf"):
        if key in schema:
            if not isinstance(schema[key], list):
                problems.append((f"{path}.{key}", "Invalid value: must be a list of schemas"))
            else:
                for n, sub in enumerate(schema[key]):
                    problems += check_schema(sub, f"{path}.{key}[{n}]")
    return problems
