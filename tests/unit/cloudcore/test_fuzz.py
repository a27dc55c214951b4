"""The request parsers meet arbitrary input: each answers or raises its own error, nothing else."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cloudcore.apiserver.patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from cloudcore.apiserver.selectors import BASE_FIELDS, SelectorError, parse_fields, parse_labels
from cloudcore.apiserver.validation import validate
from tests.unit.cloudcore.test_validation import SCHEMA

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)
selector_text = st.text(alphabet="abc=!,() in notx.-/_", max_size=30)


@settings(max_examples=300, derandomize=True)
@given(selector_text)
def test_label_selector_parser(text: str) -> None:
    with contextlib.suppress(SelectorError):
        parse_labels(text)


@settings(max_examples=300, derandomize=True)
@given(selector_text)
def test_field_selector_parser(text: str) -> None:
    with contextlib.suppress(SelectorError):
        parse_fields(text, BASE_FIELDS)


@settings(max_examples=300, derandomize=True)
@given(json_values, json_values)
def test_patches(target: Any, patch: Any) -> None:
    merge_patch(target, patch)
    with contextlib.suppress(PatchError):
        strategic_merge_patch(target, patch)
    with contextlib.suppress(PatchError):
        json_patch(target, patch)


@settings(max_examples=300, derandomize=True)
@given(
    st.dictionaries(st.sampled_from(["apiVersion", "metadata", "spec", "status", "x"]), json_values)
)
def test_schema_validation(obj: dict[str, Any]) -> None:
    result = validate(SCHEMA, obj)
    assert isinstance(result.errors, list)
