"""`as=Table` responses, so `kubectl get` prints a type's own columns. Pure."""

from __future__ import annotations

import datetime
import re
from typing import Any

from cloudcore.apiserver.resources import Column, ResourceType

TABLE_CONTENT_TYPE = "application/json;as=Table;v=v1;g=meta.k8s.io"
_STEP = re.compile(r"\.([A-Za-z0-9_-]+)|\[(\d+)\]")


def json_path(obj: Any, path: str) -> Any:
    """The value at a simple JSONPath such as `.status.addresses[0].address`, or None."""
    value = obj
    for name, index in _STEP.findall(path.strip().lstrip("{").rstrip("}")):
        if name:
            value = value.get(name) if isinstance(value, dict) else None
        else:
            value = (
                value[int(index)] if isinstance(value, list) and int(index) < len(value) else None
            )
        if value is None:
            return None
    return value


def age(timestamp: str | None, now: datetime.datetime) -> str:
    """Kubernetes' short duration: 45s, 5m, 3h, 2d."""
    if not timestamp:
        return "<unknown>"
    try:
        then = datetime.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.UTC
        )
    except ValueError:
        return "<invalid>"
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit != "m" else 1):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _columns(kind: ResourceType) -> list[Column]:
    if kind.custom:
        return [
            Column("Name", "string", ".metadata.name", "Name of the resource"),
            *kind.columns,
        ] + ([] if kind.columns else [Column("Age", "date", ".metadata.creationTimestamp")])
    return [
        Column("Name", "string", ".metadata.name", "Name of the resource"),
        *kind.columns,
        Column("Age", "string", ".metadata.creationTimestamp", "Time since creation"),
    ]


def _cell(kind: ResourceType, column: Column, obj: dict[str, Any], now: datetime.datetime) -> Any:
    if column.compute is not None:
        return column.compute(obj)
    value = json_path(obj, column.json_path)
    if (not kind.custom and column.name == "Age") or column.type == "date":
        return age(value, now) if value is not None else None
    if value is None:
        return "<none>" if not kind.custom else None
    if isinstance(value, (dict, list)):
        return str(value)
    return value


def table(
    kind: ResourceType,
    items: list[dict[str, Any]],
    resource_version: str,
    continue_token: str = "",
    now: datetime.datetime | None = None,
) -> dict[str, Any]:
    moment = now or datetime.datetime.now(datetime.UTC)
    columns = _columns(kind)
    metadata: dict[str, Any] = {"resourceVersion": resource_version}
    if continue_token:
        metadata["continue"] = continue_token
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": [
            {
                "name": c.name,
                "type": c.type,
                "format": c.format or ("name" if c.name == "Name" else ""),
                "description": c.description,
                "priority": c.priority,
            }
            for c in columns
        ],
        "rows": [
            {
                "cells": [_cell(kind, c, item, moment) for c in columns],
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": item.get("metadata", {}),
                },
            }
            for item in items
        ],
    }
