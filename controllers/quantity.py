"""Kubernetes resource quantities (`500m`, `128Mi`, `1e3`), as apimachinery's grammar defines
them: a signed decimal number, then a binary SI suffix (Ki..Ei), a decimal SI suffix (n, u, m,
k, M, G, T, P, E) or a decimal exponent (e3, E-2). Pure."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_QUANTITY = re.compile(
    r"(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?:(?P<binary>[KMGTPE]i)|(?P<exponent>[eE][+-]?[0-9]+)|(?P<decimal>[numkMGTPE]?))\Z",
    re.ASCII,
)
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}


def parse_quantity(value: object) -> Decimal:
    """The quantity's value; ValueError for anything the grammar does not allow."""
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return Decimal(value)
    match = _QUANTITY.match(str(value))
    if match is None:
        raise ValueError(f"{value!r} is not a quantity (e.g. 500m, 128Mi, 2)")
    number = Decimal(match["number"])
    try:
        if match["binary"]:
            return number * Decimal(1024) ** _BINARY[match["binary"]]
        if match["exponent"]:
            return number.scaleb(int(match["exponent"][1:]))
        return number.scaleb(_DECIMAL[match["decimal"]])
    except (InvalidOperation, OverflowError) as exc:
        raise ValueError(f"{value!r} is out of range") from exc
