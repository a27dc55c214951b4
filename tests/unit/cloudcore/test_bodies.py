"""Body bounds: expanded size and depth measured once per shared container, cycles refused."""

from __future__ import annotations

import pytest

from cloudcore.apiserver import bodies
from cloudcore.apiserver.errors import ApiError


def test_measure_counts_shared_containers_as_often_as_they_are_used() -> None:
    leaf = ["lol"] * 9  # 9 * (5 + 1) + 2 = 56 bytes
    assert bodies.measure(leaf) == (56, 1)
    twice = [leaf, leaf]
    assert bodies.measure(twice) == (2 + 2 * 57, 2)


def test_measure_refuses_what_expands_past_the_limit_without_expanding_it() -> None:
    value: object = ["x" * 1000] * 100
    for _ in range(6):  # 100**6 kB once expanded; measured in a handful of steps
        value = [value] * 100
    with pytest.raises(bodies._Refused) as refused:
        bodies.measure(value)
    assert refused.value.code == 413


def test_decode_refuses_a_cycle_and_says_so() -> None:
    with pytest.raises(ApiError) as refused:
        bodies.decode(b"a: &x [*x]", "application/yaml")
    assert refused.value.code == 400 and "refers to itself" in refused.value.message


def test_decode_takes_ordinary_yaml_and_json() -> None:
    assert bodies.decode(b"a: [1, {b: c}]", "application/yaml") == {"a": [1, {"b": "c"}]}
    assert bodies.decode(b'{"a": [1]}', "application/json") == {"a": [1]}
