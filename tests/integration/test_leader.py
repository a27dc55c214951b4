"""Leader election and the lean write path against a real `kedge apiserver`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from controllers.leader import LeaderElection
from controllers.leanapi import LeanApi, path_of
from harness.apiserver import ApiServerProcess
from harness.support import wait_until


@pytest.fixture
async def lean(apiserver: ApiServerProcess) -> AsyncIterator[LeanApi]:
    made = LeanApi(apiserver.api_client().configuration)
    yield made
    await made.close()


async def test_one_replica_leads_and_a_stopping_leader_hands_over_at_once(lean: LeanApi) -> None:
    leading: list[str] = []

    def leader(name: str) -> object:
        async def lead() -> None:
            leading.append(name)
            await asyncio.Event().wait()  # the singletons run until leadership ends

        return lead

    one = LeaderElection(lean, "kube-system", "test-election", "one", duration=30, retry=0.1)
    two = LeaderElection(lean, "kube-system", "test-election", "two", duration=30, retry=0.1)
    first = asyncio.create_task(one.run(leader("one")))  # type: ignore[arg-type]
    await wait_until(lambda: leading == ["one"], within=10, what="the first to try leads")
    second = asyncio.create_task(two.run(leader("two")))  # type: ignore[arg-type]
    await wait_until(lambda: two.attempts >= 5, within=10, what="the other trying, in vain")
    assert leading == ["one"] and not two.leading
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    await one.release()
    await wait_until(lambda: leading == ["one", "two"], within=10,
                     what="the other replica leads once the Lease is released")  # fmt: skip
    lease = await lean.get(one.path)
    assert lease["spec"]["holderIdentity"] == "two" and lease["spec"]["leaseTransitions"] == 1
    second.cancel()
    await asyncio.gather(second, return_exceptions=True)


async def test_a_stale_update_of_the_lease_is_refused(lean: LeanApi) -> None:
    election = LeaderElection(lean, "kube-system", "test-stale", "one")
    assert await election._try()
    lease = await lean.get(election.path)
    lease["spec"]["holderIdentity"] = "usurper"
    await lean.replace(election.path, lease)
    lease["spec"]["holderIdentity"] = "late"  # the resourceVersion read before: a conflict
    with pytest.raises(ApiException) as refused:
        await lean.replace(election.path, lease)
    assert refused.value.status == 409
    assert not await election._try()  # held by another, and not expired


async def test_lean_errors_are_api_exceptions_with_the_status(
    lean: LeanApi, apiserver: ApiServerProcess
) -> None:
    with pytest.raises(ApiException) as missing:
        await lean.patch(path_of("api", "v1", "nodes", "no-such-node"), {"metadata": {}})
    assert missing.value.status == 404
    configuration = apiserver.api_client().configuration
    configuration.api_key, configuration.refresh_api_key_hook = {"BearerToken": "wrong"}, None
    stranger = LeanApi(configuration)
    with pytest.raises(ApiException) as refused:
        await stranger.get(path_of("api", "v1", "nodes"))
    assert refused.value.status == 401
    await stranger.close()
    configuration.host = "https://127.0.0.1:1"
    away = LeanApi(configuration)
    with pytest.raises(ApiException) as unreachable:
        await away.get(path_of("api", "v1", "nodes"))
    assert unreachable.value.status == 0
    await away.close()


async def test_lean_credentials_refresh_once_a_period_and_at_once_after_a_401(
    apiserver: ApiServerProcess,
) -> None:
    """The refresh hook (exec plugins, OIDC) is not run per request; an expired credential
    (401) is refreshed and the request goes once more."""
    configuration = apiserver.api_client().configuration
    good = configuration.api_key["BearerToken"]
    refreshed: list[float] = []

    def refresh(c: Any) -> None:
        refreshed.append(0)
        c.api_key["BearerToken"] = good

    configuration.refresh_api_key_hook = refresh
    lean = LeanApi(configuration)
    try:
        nodes = path_of("api", "v1", "nodes")
        for _ in range(20):
            await lean.get(nodes)
        assert len(refreshed) == 1  # the first request's, none after it within the period
        configuration.api_key["BearerToken"] = "Bearer expired"
        assert (await lean.get(nodes))["kind"] == "NodeList"  # 401, refreshed, sent again
        assert len(refreshed) == 2
        configuration.refresh_api_key_hook = lambda c: None  # the refresh gives nothing new
        configuration.api_key["BearerToken"] = "Bearer revoked"
        with pytest.raises(ApiException) as refused:
            await lean.get(nodes)
        assert refused.value.status == 401  # tried once more only
    finally:
        await lean.close()
