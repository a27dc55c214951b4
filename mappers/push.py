"""pushMethod: copy each polled value to an MQTT topic, an HTTP endpoint or a database besides
the twin (targets in mappers.pushtargets and mappers.dbpush).

Each target has its own outbox and task, so a slow or absent target never delays polling, the twin
or another target. While a target is away its readings wait and are retried with capped backoff,
in order; the outbox is bounded by count and bytes, and when full the oldest readings are dropped
and counted. A new device spec keeps the outboxes of targets whose configuration did not change,
so buffered readings survive it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from kedge.backoff import Backoff
from mappers.dbpush import MysqlPush, RedisPush, mysql_table
from mappers.driver import VisitorError
from mappers.pushtargets import HttpPush, MqttPush, PushRefused, PushTarget, Reading

log = logging.getLogger("kedge.mapper.push")
QUEUE_LIMIT = 10_000  # readings per target
BYTES_LIMIT = 4 << 20  # value bytes per target
RETRY_FIRST, RETRY_CAP = 1.0, 30.0  # seconds between attempts while a target is away
CLOSE_TIMEOUT = 5.0  # seconds a target gets to close its connections
NOT_SERVED = ("otel",)  # KubeEdge's push methods kedge's mappers do not implement
Factory = Callable[[], PushTarget]
Key = tuple[str, str]  # (kind, the target's configuration as sorted JSON)
Wanted = tuple[Factory, list[str]]  # a target and the properties routed to it


class Outbox:
    """Readings waiting for one target, and the task that delivers them."""

    def __init__(self, device_id: str, what: str, target: PushTarget) -> None:
        self.device_id, self.what, self.target = device_id, what, target
        self.dropped = 0
        self._items: deque[tuple[int, Reading]] = deque()
        self._bytes, self._seq = 0, 0
        self._ready = asyncio.Event()
        self._task = asyncio.create_task(self._drain(), name=f"push {device_id} {what}")

    def __len__(self) -> int:
        return len(self._items)

    def put(self, reading: Reading) -> None:
        self._seq += 1
        self._items.append((self._seq, reading))
        self._bytes += len(reading.value)
        while len(self._items) > QUEUE_LIMIT or self._bytes > BYTES_LIMIT:
            self._bytes -= len(self._items.popleft()[1].value)
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("push target %s behind: %d readings dropped so far", self.what,
                            self.dropped, extra={"device": self.device_id})  # fmt: skip
        self._ready.set()

    def _done(self, upto: int) -> None:
        """Remove what was sent (the oldest may have been dropped meanwhile)."""
        while self._items and self._items[0][0] <= upto:
            self._bytes -= len(self._items.popleft()[1].value)
        if not self._items:
            self._ready.clear()

    async def _drain(self) -> None:
        backoff = Backoff(RETRY_FIRST, RETRY_CAP)
        while True:
            await self._ready.wait()
            batch = [reading for _, reading in itertools.islice(self._items, self.target.batch)]
            upto = self._items[len(batch) - 1][0]
            try:
                await asyncio.wait_for(self.target.send(batch), 30)
            except PushRefused as exc:
                log.warning("push to %s refused %d readings: %s", self.what, len(batch), exc,
                            extra={"device": self.device_id})  # fmt: skip
            except (ConnectionError, OSError, TimeoutError) as exc:
                if backoff.failures == 0:
                    log.warning("push to %s failed, readings kept and retried: %s", self.what,
                                exc, extra={"device": self.device_id})  # fmt: skip
                await asyncio.sleep(backoff.next())
                continue
            if backoff.failures:
                log.info("push to %s delivers again", self.what, extra={"device": self.device_id})
            backoff.reset()
            self._done(upto)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        try:  # a client cancelled mid-request may never finish closing: the device stops anyway
            await asyncio.wait_for(self.target.close(), CLOSE_TIMEOUT)
        except (TimeoutError, ConnectionError, OSError) as exc:
            log.warning("push target %s did not close cleanly: %r", self.what, exc,
                        extra={"device": self.device_id})  # fmt: skip


def _kinds(prop: str, method: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(served kinds, reasons a part is not served) of one property's pushMethod."""
    served, missing = [k for k in ("mqtt", "http") if k in method], []
    db = method.get("dbMethod")
    if isinstance(db, Mapping) and db:
        served += [f"dbMethod.{k}" for k in ("redis", "mysql") if k in db]
        refused = sorted(k for k in map(str, db) if k not in ("redis", "mysql"))
        if refused:
            missing.append(f"dbMethod ({', '.join(refused)})")
    elif "dbMethod" in method:
        missing.append("dbMethod (empty)")
    missing += [k for k in NOT_SERVED if k in method]
    if not served and not missing:
        raise VisitorError(f"{prop}: pushMethod takes mqtt, http or dbMethod, not {list(method)}")
    return served, missing


def _part(kind: str, method: Mapping[str, Any]) -> Any:
    """The configuration of one served kind: method["mqtt"] or method["dbMethod"]["redis"]."""
    return method[kind] if kind in method else method["dbMethod"][kind.removeprefix("dbMethod.")]


def _factory(kind: str, config: Any) -> Factory:
    """How to make the target; the configuration's shape is checked now (a kept target too)."""
    if kind == "mqtt":
        return lambda: MqttPush(config)
    if kind == "http":
        return lambda: HttpPush(config)
    if not isinstance(config, Mapping):
        raise VisitorError(f"pushMethod.{kind}: must be an object")
    if kind == "dbMethod.redis":
        return lambda: RedisPush(config)
    return lambda: MysqlPush(config)


class Pusher:
    """The push targets of one device, one outbox per distinct target configuration."""

    def __init__(self, device_id: str) -> None:
        self.device_id = device_id
        self._outboxes: dict[Key, Outbox] = {}
        self._routes: dict[str, list[Outbox]] = {}  # property -> its outboxes
        self.unsupported: dict[str, str] = {}  # property -> what of its pushMethod is not served

    async def configure(self, methods: Mapping[str, Mapping[str, Any]]) -> None:
        """Targets for a (new) spec; raises VisitorError leaving the old ones in place."""
        wanted: dict[Key, Wanted] = {}
        unsupported: dict[str, str] = {}
        for prop, method in methods.items():
            served, missing = _kinds(prop, method)
            for kind in served:
                config = _part(kind, method)
                key = (kind, orjson.dumps(config, option=orjson.OPT_SORT_KEYS).decode())
                wanted.setdefault(key, (_factory(kind, config), []))[1].append(prop)
            if missing:
                unsupported[prop] = (f"pushMethod {', '.join(missing)} is not supported by "
                                     "kedge's mappers; readings are not sent there")  # fmt: skip
        outboxes = await self._outboxes_for(wanted)
        self._routes = {}
        for key, (_, props) in wanted.items():
            for prop in props:
                self._routes.setdefault(prop, []).append(outboxes[key])
        stale = [box for key, box in self._outboxes.items() if key not in outboxes]
        self._outboxes, self.unsupported = outboxes, unsupported
        for outbox in stale:
            await outbox.close()

    async def _outboxes_for(self, wanted: Mapping[Key, Wanted]) -> dict[Key, Outbox]:
        """The outboxes kept, and new ones; if a new target cannot be made, none is."""
        made: dict[Key, PushTarget] = {}
        try:
            for key, (factory, props) in wanted.items():
                if key not in self._outboxes:
                    made[key] = factory()
                for prop in props if key[0] == "dbMethod.mysql" else ():
                    mysql_table(self.device_id, prop)  # a name MySQL would refuse: refused now
        except VisitorError:
            for target in made.values():
                await target.close()
            raise
        return {key: self._outboxes.get(key) or Outbox(self.device_id, key[0], made[key])
                for key in wanted}  # fmt: skip

    def push(self, prop: str, value: str, type_: str, timestamp: int) -> None:
        for outbox in self._routes.get(prop, ()):
            outbox.put(Reading(self.device_id, prop, value, type_, timestamp))

    async def close(self) -> None:
        for outbox in self._outboxes.values():
            await outbox.close()
        self._outboxes, self._routes = {}, {}
