"""Quantities as apimachinery defines them: the same values as the official client's parser for
every form the grammar allows, and a clear refusal of what it does not."""

from __future__ import annotations

from decimal import Decimal

import pytest
from kubernetes.utils import parse_quantity as official

from controllers.quantity import parse_quantity

VALID = ["0", "1", "250m", "0.5", ".5", "2.", "+3", "-1", "100n", "3u", "1k", "2M", "4G", "1T",
         "1P", "2E", "128Ki", "64Mi", "1.5Gi", "2Ti", "1Pi", "1Ei", "1e3", "1E3", "5e-2",
         "12E+2", "1234567890123456789"]  # fmt: skip


@pytest.mark.parametrize("text", VALID)
def test_values_match_the_official_client(text: str) -> None:
    assert parse_quantity(text) == official(text)


@pytest.mark.parametrize("text", ["", "Ki", "1Kb", "1ki", "1.2.3", "NaN", "Infinity", " 1",
                                  "1 ", "1e", "0x10", "1m5", "١"])  # fmt: skip
def test_what_the_grammar_refuses_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="quantity"):
        parse_quantity(text)


def test_numbers_pass_through() -> None:
    assert parse_quantity(3) == Decimal(3)
    with pytest.raises(ValueError):
        parse_quantity(True)
