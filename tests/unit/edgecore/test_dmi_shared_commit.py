"""Reports of one loop turn share one commit and one publish; each is answered only after it,
or refused."""

from __future__ import annotations

import asyncio

from devicetwin.events import Outbound
from edgecore.dmi.server import SharedCommit
from kedge.grpcwire.server import Later
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


def _answers(reply: Later) -> list[bytes | RpcError]:
    """What the server would be told (set as grpcwire does when a handler returns a Later)."""
    seen: list[bytes | RpcError] = []
    reply.on_settle(seen.append)
    return seen


async def _turn() -> None:
    await asyncio.sleep(0)


def _event(n: int) -> Outbound:
    return Outbound(f"t/{n}", b"%d" % n)


async def test_one_turns_reports_share_a_commit_and_a_publish_after_it() -> None:
    commits, published = Commits(), list[list[Outbound]]()
    shared = SharedCommit(commits, lambda events: published.append(list(events)))  # type: ignore[arg-type]
    answers = [_answers(shared.join([_event(n)])) for n in range(3)]
    await _turn()
    assert len(commits.futures) == 1 and not any(answers) and not published
    later = _answers(shared.join([_event(3)]))  # the next turn: the next commit
    commits.futures[0].set_result(None)
    await _turn()
    assert answers == [[b""]] * 3
    assert published == [[_event(0), _event(1), _event(2)]]  # one publish for the turn
    assert not later and len(commits.futures) == 2


async def test_a_failed_commit_refuses_its_reports_unpublished() -> None:
    commits, published = Commits(), list[list[Outbound]]()
    shared = SharedCommit(commits, lambda events: published.append(list(events)))  # type: ignore[arg-type]
    answers = _answers(shared.join([_event(1)]))
    gone = shared.join([_event(2)])  # nobody is told its answer
    await _turn()
    commits.futures[0].set_exception(OSError("disk full"))
    await _turn()
    assert len(answers) == 1 and isinstance(answers[0], RpcError)
    assert answers[0].code == Status.UNAVAILABLE and published == []
    gone.settle(b"")  # settling an unanswerable call is harmless


async def test_stored_reports_are_answered_even_when_publishing_fails() -> None:
    def publish(_events: object) -> None:
        raise RuntimeError("a bug while publishing")

    commits = Commits()
    shared = SharedCommit(commits, publish)  # type: ignore[arg-type]
    answers = _answers(shared.join([_event(1)]))
    await _turn()
    commits.futures[0].set_result(None)
    await _turn()  # the loop's exception handler logs the bug
    assert answers == [b""]
