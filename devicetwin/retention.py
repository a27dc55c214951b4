"""How long a device's history is kept, per device and per property. Pure.

edgecore's `--history-max-age` and `--history-max-points` apply to every property; a Device may
set its own with the annotation `history.kedge.io/retention`, a JSON object:

    {"maxAge": "1d", "maxPoints": 5000, "properties": {"temperature": {"maxAge": "30d"}}}

A property's own setting wins over the device's, which wins over edgecore's. Durations are
`<n>ms|s|m|h|d`; both limits must be positive (edgecore's `--history-max-age 0` turns history
off for the node).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

ANNOTATION = "history.kedge.io/retention"
_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION = re.compile(r"([0-9]{1,12})(ms|s|m|h|d)?")
MAX_MS = 3650 * 86_400_000  # ten years
Rule = dict[str, Any]  # {"maxAgeMs": int, "maxPoints": int, "properties": {name: {...}}}


@dataclass(frozen=True, slots=True)
class Retention:
    max_age_ms: int = 7 * 24 * 3600 * 1000  # a week
    max_points: int = 200_000  # per property (about two days of 1 s data)


def duration_ms(text: str) -> int:
    """`500ms`, `10s`, `5m`, `1h`, `1d` or plain milliseconds; 0 if it is none of those."""
    match = _DURATION.fullmatch(text)
    ms = int(match.group(1)) * _UNITS[match.group(2) or "ms"] if match else 0
    return ms if 0 < ms <= MAX_MS else 0


def _limits(raw: Mapping[str, Any], where: str) -> Rule:
    out: Rule = {}
    unknown = set(raw) - {"maxAge", "maxPoints", "properties"}
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)} (maxAge, maxPoints)")
    if "maxAge" in raw:
        out["maxAgeMs"] = duration_ms(str(raw["maxAge"]))
        if not out["maxAgeMs"]:
            raise ValueError(f"{where}.maxAge: {raw['maxAge']!r} is not a duration (1d, 12h)")
    if "maxPoints" in raw:
        points = raw["maxPoints"]
        if isinstance(points, bool) or not isinstance(points, int) or not 0 < points <= 10**9:
            raise ValueError(f"{where}.maxPoints: {points!r} is not a positive integer")
        out["maxPoints"] = points
    return out


def parse_rule(text: object) -> Rule:
    """The annotation's value as a rule; ValueError saying what is wrong."""
    try:
        raw = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        raw = None
    if not isinstance(raw, dict):
        raise ValueError('must be a JSON object such as {"maxAge": "1d", "maxPoints": 5000}')
    rule = _limits(raw, "retention")
    properties = raw.get("properties", {})
    if not isinstance(properties, dict):
        raise ValueError("retention.properties: must be an object of property names")
    rule["properties"] = {}
    for name, limits in properties.items():
        if not isinstance(limits, dict) or "properties" in limits:
            raise ValueError(f"retention.properties.{name}: must be {{maxAge, maxPoints}}")
        rule["properties"][str(name)] = _limits(limits, f"retention.properties.{name}")
    return rule


def effective(base: Retention, rule: Mapping[str, Any] | None, prop: str) -> Retention:
    """The retention of one property: its own limits, else its device's, else `base`."""
    if not rule:
        return base
    out = base
    for limits in (rule, (rule.get("properties") or {}).get(prop) or {}):
        if "maxAgeMs" in limits:
            out = replace(out, max_age_ms=int(limits["maxAgeMs"]))
        if "maxPoints" in limits:
            out = replace(out, max_points=int(limits["maxPoints"]))
    return out
