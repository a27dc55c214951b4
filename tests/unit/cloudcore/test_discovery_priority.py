"""A group's versions in Kubernetes' priority order (apimachinery's documented example)."""

from __future__ import annotations

from cloudcore.apiserver.discovery import version_priority


def test_kubernetes_version_priority() -> None:
    shuffled = ["foo10", "v1", "v11alpha2", "v2", "v10beta3", "foo1", "v3beta1", "v12alpha1",
                "v11beta2", "v10"]  # fmt: skip
    assert sorted(shuffled, key=version_priority) == [
        "v10", "v2", "v1", "v11beta2", "v10beta3", "v3beta1", "v12alpha1", "v11alpha2", "foo1",
        "foo10"]  # fmt: skip
    assert sorted(["v1alpha2", "v1beta1"], key=version_priority) == ["v1beta1", "v1alpha2"]
