"""Label and field selectors as Kubernetes parses them."""

from __future__ import annotations

import pytest

from cloudcore.apiserver.selectors import (
    BASE_FIELDS,
    SelectorError,
    fields_match,
    labels_match,
    parse_fields,
    parse_labels,
)

LABELS = {"app": "web", "tier": "front", "env": "prod"}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app!=web", False),
        ("app!=db", True),
        ("missing!=x", True),
        ("app in (web, db)", True),
        ("app notin (web,db)", False),
        ("env notin (dev)", True),
        ("tier", True),
        ("!tier", False),
        ("!missing", True),
        ("app=web,tier in (front),!missing", True),
        ("app=web,env=dev", False),
        ("example.com/role=x", False),
    ],
)
def test_label_selectors_match_like_kubernetes(selector: str, matches: bool) -> None:
    assert labels_match(parse_labels(selector), LABELS) is matches


@pytest.mark.parametrize(
    "selector", ["app in (web", "app)", "=web", "app=we b", "a in ()", "app,,tier", "-bad=x"]
)
def test_bad_label_selectors_are_errors(selector: str) -> None:
    with pytest.raises(SelectorError):
        parse_labels(selector)


def test_field_selectors_match_and_refuse_unsupported_fields() -> None:
    pod = {"metadata": {"name": "p", "namespace": "ns"}, "spec": {"nodeName": "n1"},
           "status": {"phase": "Running"}}  # fmt: skip
    fields = (*BASE_FIELDS, "spec.nodeName", "status.phase")
    assert fields_match(parse_fields("spec.nodeName=n1,status.phase!=Failed", fields), pod)
    assert not fields_match(parse_fields("metadata.name==q", fields), pod)
    assert fields_match(parse_fields("spec.nodeName!=", fields), pod)
    with pytest.raises(SelectorError, match="not supported"):
        parse_fields("spec.other=x", fields)
    with pytest.raises(SelectorError, match="invalid"):
        parse_fields("metadata.name", fields)
