"""Telemetry history at the edge: `GET /v1/devices/{ns}/{name}/twin/{property}/history?since=
&until=&step=` gives a property's reported values over time, raw or per step (min, max, mean,
count of the numeric ones); `keep_history` trims them to the retention.

`since` and `until` are RFC 3339 times or milliseconds since the epoch (defaults: the last hour
until now); `step` a duration (`500ms`, `10s`, `5m`, `1h`, `1d`) or milliseconds. Raw answers
hold at most 100,000 points (ask with a step for long ranges)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from fastapi import APIRouter, Query

from devicetwin.history import MAX_POINTS_ANSWERED
from devicetwin.history import Query as HistoryQuery
from devicetwin.model import DeviceId
from devicetwin.retention import Retention, Rule, duration_ms
from devicetwin.rules import TwinError
from devicetwin.service import TwinService
from kedge.channel import routes
from kedge.channel.message import Message, Op

log = logging.getLogger("kedge.edgecore")
HOUR_MS = 3600_000
TRIM_PERIOD = 60.0  # seconds between retention passes while values arrive
CLOUD_POINTS = 50_000  # points in one answer to the cloud (a channel frame holds 4 MiB)
Send = Callable[[Message], Awaitable[object]]


def parse_time(text: str, what: str) -> int:
    """Milliseconds since the epoch from a number of them or an RFC 3339 time."""
    if text.isdigit() and len(text) <= 16:
        return int(text)
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
        stamp.timestamp()
    except (ValueError, OverflowError):
        raise TwinError(400, f"{what}: {text!r} is not an RFC 3339 time or ms since the epoch"
                        ) from None  # fmt: skip
    if stamp.tzinfo is None:
        raise TwinError(400, f"{what}: {text!r} has no time zone")
    return int(stamp.timestamp() * 1000)


def parse_step(text: str) -> int:
    step = duration_ms(text)
    if not step:
        raise TwinError(400, f"step: {text!r} is not a duration from 1ms to 10 years "
                        "(500ms, 10s, 5m, 1h, 1d)")  # fmt: skip
    return step


async def answer_history(service: TwinService, namespace: str, name: str, prop: str,
                         since: str | None, until: str | None, step: str | None, limit: int
                         ) -> dict[str, object]:  # fmt: skip
    """The history answer, over HTTP here or for the cloud; TwinError when it cannot be."""
    device = service.devices.get(DeviceId(f"{namespace}/{name}"))
    if device is None or prop not in device.twins:
        raise TwinError(404, f"device {namespace}/{name} has no property {prop!r} on this node")
    end = parse_time(until, "until") if until else service.clock()
    start = parse_time(since, "since") if since else end - HOUR_MS
    if start >= end:
        raise TwinError(400, "since must be before until")
    every = parse_step(step) if step else 0
    query = HistoryQuery(device.id, prop, start, end, every, limit)
    points = await asyncio.to_thread(service.store.history, query)  # WAL: beside commits
    return {"device": device.id, "property": prop, "since": start, "until": end, "step": every,
            "points": points, "truncated": len(points) >= limit}  # fmt: skip


def history_view(service: TwinService) -> APIRouter:
    router = APIRouter(prefix="/v1/devices")

    @router.get("/{namespace}/{name}/twin/{prop}/history")
    async def history(namespace: str, name: str, prop: str, since: str | None = Query(None),
                      until: str | None = Query(None), step: str | None = Query(None),
                      ) -> dict[str, object]:  # fmt: skip
        return await answer_history(service, namespace, name, prop, since, until, step,
                                    MAX_POINTS_ANSWERED)  # fmt: skip

    return router


def device_rules(service: TwinService) -> dict[str, Rule]:
    """The devices' own retention (annotation history.kedge.io/retention), by device id."""
    return {d.id: rule for d in service.devices.values()
            if isinstance(rule := d.spec.get("history"), dict)}  # fmt: skip


async def keep_history(service: TwinService, retention: Retention, period: float = TRIM_PERIOD
                       ) -> None:  # fmt: skip
    """Every `period`, and only when values were written meanwhile, the history is trimmed to
    `retention` (by age, then per property by count): an edge disk never fills with it."""
    while True:
        await asyncio.sleep(period)  # the retention cycle, not a synchronisation
        if service.history_pending:
            service.history_pending = 0
            trim = functools.partial(service.store.trim_history, service.clock(), retention,
                                     device_rules(service))  # fmt: skip
            removed = await service.committer.call(trim)
            if removed:
                log.info("history trimmed", extra={"node": service.node, "removed": removed})


class HistoryAnswers:
    """The cloud's history queries (`twin/query` on `history/<ns>/<name>`), answered from here:
    the data stays at the edge until someone asks (at most CLOUD_POINTS per answer)."""

    def __init__(self, node: str, service: TwinService, send: Send) -> None:
        self.node, self.service, self.send = node, service, send

    async def on_query(self, message: Message) -> None:
        query = message.content if isinstance(message.content, dict) else {}
        try:
            _, namespace, name = routes.parse_key(message.resource, ("history",))
            answer: dict[str, object] = await self.answer(namespace, name, query)
        except ValueError as exc:
            answer = {"error": str(exc), "code": 400}
        except TwinError as exc:
            answer = {"error": exc.reason, "code": exc.code}
        await self.send(message.reply(routes.edge_source(self.node), Op.RESPONSE, answer))

    async def answer(self, namespace: str, name: str, query: dict[str, object]
                     ) -> dict[str, object]:  # fmt: skip
        def text(key: str) -> str | None:
            value = query.get(key)
            return None if value is None else str(value)

        prop = text("property") or ""
        found = await answer_history(self.service, namespace, name, prop, text("since"),
                                     text("until"), text("step"), CLOUD_POINTS)  # fmt: skip
        return found
