"""Push outboxes: bounded while a target is away, in order when it is back; push configuration
checked before anything is replaced."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from harness.support import wait_until
from mappers import push
from mappers.driver import VisitorError
from mappers.push import Outbox, Pusher
from mappers.pushtargets import PushRefused, Reading


class Target:
    """A push target that is away until `up`, refusing values that start with "bad"."""

    batch = 7

    def __init__(self) -> None:
        self.up, self.got, self.closed = False, [], False

    async def send(self, readings: Sequence[Reading]) -> None:
        if not self.up:
            raise ConnectionError("away")
        if readings[0].value.startswith("bad"):
            raise PushRefused("never")
        self.got += [r.value for r in readings]

    async def close(self) -> None:
        self.closed = True


def reading(value: str) -> Reading:
    return Reading("default/thermo", "temperature", value, "string", 1)


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(push, "RETRY_FIRST", 0.01)
    monkeypatch.setattr(push, "RETRY_CAP", 0.05)


async def test_outbox_when_target_away_keeps_the_newest_within_bounds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(push, "QUEUE_LIMIT", 50)
    target = Target()
    outbox = Outbox("default/thermo", "test", target)
    for i in range(200):
        outbox.put(reading(str(i)))
    assert len(outbox) == 50 and outbox.dropped == 150
    target.up = True
    await wait_until(lambda: len(target.got) == 50, what="the buffered readings")
    assert target.got == [str(i) for i in range(150, 200)]  # the newest, in order
    await outbox.close()
    assert target.closed


async def test_outbox_when_values_are_large_bounds_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(push, "BYTES_LIMIT", 10_000)
    outbox = Outbox("default/thermo", "test", Target())
    for _ in range(10):
        outbox.put(reading("x" * 3000))
    assert len(outbox) == 3 and outbox.dropped == 7
    await outbox.close()


async def test_outbox_when_target_refuses_drops_that_batch_only() -> None:
    target = Target()
    target.up = True
    outbox = Outbox("default/thermo", "test", target)
    outbox.put(reading("bad"))
    await wait_until(lambda: len(outbox) == 0, what="the refused reading dropped")
    outbox.put(reading("good"))
    await wait_until(lambda: target.got == ["good"], what="the next reading")
    await outbox.close()


REDIS = {"dbMethod": {"redis": {"redisClientConfig": {"addr": "127.0.0.1:6390"}}}}


@pytest.mark.parametrize(
    ("method", "why"),
    [
        ({"kafka": {}}, "pushMethod takes mqtt, http or dbMethod"),
        ({"mqtt": {}}, "is not tcp://host:port"),
        ({"dbMethod": {"redis": {"redisClientConfig": {"addr": "nohost"}}}}, "is not host:port"),
        ({"dbMethod": {"redis": {"redisClientConfig": {"addr": "h:1", "db": "x"}}}}, "db: 'x'"),
        ({"dbMethod": {"redis": {}}}, "needs redisClientConfig"),
        ({"dbMethod": {"redis": "127.0.0.1"}}, "must be an object"),
        ({"dbMethod": {"mysql": {"mysqlClientConfig": {"addr": "h:3306"}}}}, "are required"),
        ({"dbMethod": {"mysql": {"mysqlClientConfig": {
            "addr": "h:3306", "database": "d", "userName": "u"}}}}, "longer than MySQL's 64"),
    ],
)  # fmt: skip
async def test_configure_when_method_is_bad_raises_and_keeps_the_old(
    method: dict[str, object], why: str
) -> None:
    pusher = Pusher("default/thermo")
    await pusher.configure({"temperature": REDIS})
    with pytest.raises(VisitorError, match=why):
        await pusher.configure({"temperature": REDIS, "p" * 60: method})
    assert [len(r) for r in pusher._routes.values()] == [1]  # the old target still routed
    await pusher.close()


async def test_configure_when_unchanged_keeps_the_outbox_and_its_readings() -> None:
    pusher = Pusher("default/thermo")
    await pusher.configure({"temperature": REDIS})
    pusher.push("temperature", "21", "float", 1)
    kept = pusher._routes["temperature"][0]
    await pusher.configure({"temperature": REDIS, "humidity": REDIS})  # same target, one more
    assert pusher._routes["humidity"] == [kept] and len(kept) == 1  # Redis is away: kept
    await pusher.configure({"temperature": {"dbMethod": {"influxdb2": {}, "tdengine": {}}}})
    assert "dbMethod (influxdb2, tdengine) is not supported" in pusher.unsupported["temperature"]
    assert pusher._routes == {}
    await pusher.close()
