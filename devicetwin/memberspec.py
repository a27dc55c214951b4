"""The member spec: one property of a device as the edge's spec parser writes it and the mappers
read it (`spec.properties[]` of the membership extension). One frozen type for both sides, so
the merged spec is a written agreement, not two dict readers. Pure.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_CYCLE_MS = 1000


@dataclass(frozen=True, slots=True)
class PropertyConfig:
    """One property of a device as the merged spec carries it to mappers."""

    name: str
    type: str
    access_mode: str = "ReadWrite"
    visitor: Mapping[str, Any] = field(default_factory=dict)  # the visitor's configData
    collect_cycle_ms: int = DEFAULT_CYCLE_MS
    report_cycle_ms: int = DEFAULT_CYCLE_MS
    report_to_cloud: bool = True
    push_method: Mapping[str, Any] = field(default_factory=dict)
    minimum: float | None = None
    maximum: float | None = None
    unit: str = ""
    description: str = ""
    protocol: str = ""

    @property
    def subscribed(self) -> bool:
        """The visitor asks for values pushed by the device (`subscribe: true`)."""
        return self.visitor.get("subscribe") is True

    def to_spec(self) -> dict[str, Any]:
        """The wire shape (the membership extension's `spec.properties[]`)."""
        out: dict[str, Any] = {
            "name": self.name, "type": self.type, "accessMode": self.access_mode,
            "minimum": self.minimum, "maximum": self.maximum, "unit": self.unit,
            "description": self.description,
            "visitors": {"protocolName": self.protocol, "configData": dict(self.visitor)},
            "collectCycle": self.collect_cycle_ms, "reportCycle": self.report_cycle_ms,
            "reportToCloud": self.report_to_cloud,
        }  # fmt: skip
        if self.push_method:
            out["pushMethod"] = dict(self.push_method)
        return out

    @classmethod
    def from_spec(cls, raw: Mapping[str, Any]) -> PropertyConfig:
        """Read the wire shape; what is missing takes its default."""
        visitors = raw.get("visitors") or {}
        return cls(
            name=str(raw["name"]),
            type=str(raw.get("type", "string")),
            access_mode=str(raw.get("accessMode", "ReadWrite")),
            visitor=dict(visitors.get("configData") or {}),
            collect_cycle_ms=int(raw.get("collectCycle") or DEFAULT_CYCLE_MS),
            report_cycle_ms=int(raw.get("reportCycle") or DEFAULT_CYCLE_MS),
            report_to_cloud=bool(raw.get("reportToCloud", True)),
            push_method=dict(raw.get("pushMethod") or {}),
            minimum=_bound(raw.get("minimum")),
            maximum=_bound(raw.get("maximum")),
            unit=str(raw.get("unit") or ""),
            description=str(raw.get("description") or ""),
            protocol=str(visitors.get("protocolName") or ""),
        )

    def desired_problem(self, value: str) -> str | None:
        """Why the mapper will not write `value` (the edge checks it too, but a delta may come
        from any client the broker lets publish): access mode, type, the model's range."""
        if self.access_mode == "ReadOnly":
            return f"{self.name} is ReadOnly"
        if self.type == "boolean" and value not in ("true", "false"):
            return f"{value!r} is not true or false"
        if self.type in ("int", "float", "double"):
            if not _NUMBER[self.type].fullmatch(value):
                return f"{value!r} is not {'an integer' if self.type == 'int' else 'a number'}"
            number = float(value)
            if not math.isfinite(number):
                return f"{value!r} is not a finite number"
            if self.minimum is not None and number < self.minimum:
                return f"{value} is below the minimum {self.minimum:g}"
            if self.maximum is not None and number > self.maximum:
                return f"{value} is above the maximum {self.maximum:g}"
        return None


_NUMBER = {
    "int": re.compile(r"[+-]?[0-9]+", re.ASCII),
    "float": re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII),
}
_NUMBER["double"] = _NUMBER["float"]


def _bound(raw: Any) -> float | None:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None
