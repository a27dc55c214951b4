"""Reports of one loop turn share one commit; each is answered only after it, or refused."""

from __future__ import annotations

import asyncio
import functools

import pytest

from edgecore.dmi.server import SharedCommit
from kedge.grpcwire.status import RpcError, Status


class Commits:
    """The part of TwinService a SharedCommit uses: batches in, a future per commit."""

    def __init__(self) -> None:
        self.futures: list[asyncio.Future[None]] = []

    def take_batch(self) -> object:
        return object()

    def submit(self, _batch: object) -> asyncio.Future[None]:
        self.futures.append(asyncio.get_running_loop().create_future())
        return self.futures[-1]


async def _turn() -> None:
    await asyncio.sleep(0)


async def test_one_turns_reports_share_a_commit_and_are_answered_after_it() -> None:
    commits, published = Commits(), list[int]()
    shared = SharedCommit(commits)  # type: ignore[arg-type]
    replies = [shared.join(functools.partial(published.append, n)) for n in range(3)]
    await _turn()
    assert len(commits.futures) == 1 and not any(r.done() for r in replies)
    later = shared.join(lambda: published.append(3))  # the next turn: the next commit
    commits.futures[0].set_result(None)
    await _turn()
    assert [r.result() for r in replies] == [b""] * 3 and published == [0, 1, 2]
    assert not later.done() and len(commits.futures) == 2


async def test_a_failed_commit_refuses_its_reports_unpublished() -> None:
    commits, published = Commits(), list[int]()
    shared = SharedCommit(commits)  # type: ignore[arg-type]
    reply = shared.join(lambda: published.append(1))
    gone = shared.join(lambda: published.append(2))
    gone.cancel()  # the client reset that call meanwhile
    await _turn()
    commits.futures[0].set_exception(OSError("disk full"))
    await _turn()
    with pytest.raises(RpcError) as info:
        reply.result()
    assert info.value.code == Status.UNAVAILABLE and published == []
