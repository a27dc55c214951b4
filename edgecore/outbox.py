"""Upstream reports waiting for the cloud, kept on disk (KubeEdge drops them; kedge does not).

One entry per device holds its newest status (a newer report replaces an older unsent one:
Device.status shows the latest anyway); entries go out in the order they were last changed and
leave the outbox only when the cloud acks that exact entry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from kedge.sqlite import open_store

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    device TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    body TEXT NOT NULL
)
"""


class Outbox:
    def __init__(self, path: Path) -> None:
        self._db = open_store(path, SCHEMA)
        row = self._db.execute("SELECT MAX(seq) FROM outbox").fetchone()
        self._seq = int(row[0] or 0)

    def close(self) -> None:
        self._db.close()

    def put(self, device: str, body: dict[str, Any]) -> int:
        self._seq += 1
        self._db.execute(
            "INSERT INTO outbox (device, seq, body) VALUES (?, ?, ?) ON CONFLICT (device) "
            "DO UPDATE SET seq = excluded.seq, body = excluded.body",
            (device, self._seq, orjson.dumps(body).decode()),
        )
        return self._seq

    def entries(self) -> list[tuple[str, int, dict[str, Any]]]:
        rows = self._db.execute("SELECT device, seq, body FROM outbox ORDER BY seq").fetchall()
        return [(str(d), int(s), orjson.loads(b)) for d, s, b in rows]

    def ack(self, device: str, seq: int) -> None:
        self._db.execute("DELETE FROM outbox WHERE device = ? AND seq = ?", (device, seq))
