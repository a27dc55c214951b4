"""Calls relayed between processes (kedge.grpcwire.relay), both ends in one loop over a real
socket pair: answers and statuses come back to their own calls, a broken record ends the relay,
and calls waiting when the serving side goes are answered UNAVAILABLE."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from kedge.grpcwire.relay import CALL, Back, Front
from kedge.grpcwire.server import Later
from kedge.grpcwire.status import RpcError, Status


def _refuse(_data: bytes) -> bytes:
    raise RpcError(Status.NOT_FOUND, "device default/ü gone")


async def _later(data: bytes) -> bytes:
    await asyncio.sleep(0)
    return data[::-1]


def _broken(_data: bytes) -> bytes:
    raise KeyError("a bug")


HANDLERS = [lambda data: data.upper(), _refuse, _later, _broken]


async def _pair() -> tuple[Front, Back]:
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    front, back = Front(), Back(HANDLERS, 1 << 20)
    await loop.connect_accepted_socket(lambda: front, theirs)
    await loop.connect_accepted_socket(lambda: back, ours)
    return front, back


@pytest.fixture
async def pair() -> AsyncIterator[tuple[Front, Back]]:
    front, back = await _pair()
    yield front, back
    for side in (front, back):
        if side.transport is not None:
            side.transport.close()


async def _call(front: Front, method: int, data: bytes) -> bytes | RpcError:
    answer: asyncio.Future[bytes | RpcError] = asyncio.get_running_loop().create_future()
    later = front.handler(method)(data)
    assert isinstance(later, Later)
    later.on_settle(answer.set_result)
    return await asyncio.wait_for(answer, 5)


async def test_answers_and_statuses_reach_their_own_calls(pair: tuple[Front, Back]) -> None:
    front, back = pair
    front.listening()
    await asyncio.wait_for(back.ready.wait(), 5)
    results = await asyncio.gather(*(_call(front, n % 4, b"ab%d" % n) for n in range(40)))
    for n, result in enumerate(results):
        if n % 4 == 0:
            assert result == b"AB%d" % n
        elif n % 4 == 2:
            assert result == (b"ab%d" % n)[::-1]
        else:
            assert isinstance(result, RpcError)
            expected = ((Status.NOT_FOUND, "device default/ü gone") if n % 4 == 1
                        else (Status.INTERNAL, "internal error"))  # fmt: skip
            assert (result.code, result.message) == expected


async def test_an_unknown_method_is_unimplemented(pair: tuple[Front, Back]) -> None:
    result = await _call(pair[0], 9, b"x")
    assert isinstance(result, RpcError) and result.code == Status.UNIMPLEMENTED


async def test_a_broken_record_ends_the_relay_and_waiting_calls_are_unavailable(
    pair: tuple[Front, Back],
) -> None:
    front, back = pair
    held, called = Later(), asyncio.Event()

    def hold(_data: bytes) -> Later:  # the serving side never answers this one
        called.set()
        return held

    back.handlers = [hold]
    waiting = asyncio.ensure_future(_call(front, 0, b"x"))
    await asyncio.wait_for(called.wait(), 5)
    assert front.transport is not None
    front.transport.write(CALL.pack(7, 0, 1 << 30))  # a record longer than any message
    await asyncio.wait_for(back.closed, 5)
    result = await waiting
    assert isinstance(result, RpcError) and result.code == Status.UNAVAILABLE
    with pytest.raises(RpcError, match="gone"):
        front.handler(0)(b"after")
