"""Reading container logs for `kubectl logs` (tail, byte limit, missing logs) and choosing the
container the API server asks for."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudcore.apiserver.errors import ApiError
from cloudcore.apiserver.podlogs import container_of
from edgecore.edged.logs import LogError, read_log


def test_tail_and_limit(tmp_path: Path) -> None:
    log = tmp_path / "main.log"
    log.write_text("".join(f"line {i}\n" for i in range(1000)))
    assert read_log(log, {"tailLines": 2}) == "line 998\nline 999\n"
    assert read_log(log, {"tailLines": 0}) == ""
    assert read_log(log, {"limitBytes": 7}) == "line 0\n"
    assert read_log(log, {}).count("\n") == 1000
    with pytest.raises(LogError, match="no log yet") as missing:
        read_log(tmp_path / "none.log", {"container": "main", "previous": True})
    assert missing.value.code == 400 and "previous" in str(missing.value)
    with pytest.raises(LogError) as unknown:
        read_log(None, {"container": "x"})
    assert unknown.value.code == 404


def test_container_choice() -> None:
    one = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]}}
    two = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}, {"name": "b"}]}}
    assert container_of(one, "") == "a" and container_of(two, "b") == "b"
    with pytest.raises(ApiError, match=r"choose one of: \[a b\]"):
        container_of(two, "")
    with pytest.raises(ApiError, match="not valid"):
        container_of(one, "z")
