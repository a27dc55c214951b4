"""What each node must hold and what it has confirmed, kept durably (KubeEdge's ObjectSync idea).

For every (node, object) the newest wanted state is recorded: an object to hold (with its
resourceVersion and payload) or a deletion. A node's ack of a version marks it delivered; a
newer wanted version replaces an older one that was never acked (newest wins, older ones are
never sent again). `pending(node)` is what to (re)send after a connect, in version order. The
state lives in SQLite, so a cloudcore restarted with `kill -9` resends exactly what is unacked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from kedge.sealing import Sealer
from kedge.sqlite import open_store

SCHEMA = """
CREATE TABLE IF NOT EXISTS object_sync (
    node TEXT NOT NULL,
    key TEXT NOT NULL,
    rv INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    payload TEXT NOT NULL,
    acked_rv INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (node, key)
)
"""


@dataclass(frozen=True, slots=True)
class Pending:
    node: str
    key: str
    rv: int
    deleted: bool
    payload: Any


class ObjectSync:
    """Payloads of Secrets (`secret/...` keys) are stored sealed with `sealer`."""

    def __init__(self, path: Path, sealer: Sealer | None = None) -> None:
        self._db = open_store(path, SCHEMA)
        self._sealer = sealer

    def _dump(self, key: str, payload: Any) -> str:
        text = orjson.dumps(payload).decode()
        return self._sealer.seal(text, key) if self._sealer and key.startswith("secret/") else text

    def _load(self, key: str, text: str) -> Any:
        if self._sealer is not None and key.startswith("secret/"):
            text = self._sealer.open(text, key)
        return orjson.loads(text)

    def close(self) -> None:
        self._db.close()

    def want(self, node: str, key: str, rv: int, payload: Any, deleted: bool = False) -> bool:
        """Record the wanted state; False when it is not newer than what is recorded."""
        row = self._db.execute(
            "SELECT rv FROM object_sync WHERE node = ? AND key = ?", (node, key)
        ).fetchone()
        if row is not None and row[0] >= rv:
            return False
        self._db.execute(
            "INSERT INTO object_sync (node, key, rv, deleted, payload) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (node, key) DO UPDATE SET rv = excluded.rv, deleted = excluded.deleted, "
            "payload = excluded.payload",
            (node, key, rv, int(deleted), self._dump(key, payload)),
        )
        return True

    def ack(self, node: str, key: str, rv: int) -> None:
        """The node confirmed version `rv`; a confirmed deletion is forgotten."""
        self._db.execute(
            "UPDATE object_sync SET acked_rv = MAX(acked_rv, ?) WHERE node = ? AND key = ?",
            (rv, node, key),
        )
        self._db.execute(
            "DELETE FROM object_sync WHERE node = ? AND key = ? AND deleted = 1 AND acked_rv >= rv",
            (node, key),
        )

    def pending(self, node: str) -> list[Pending]:
        rows = self._db.execute(
            "SELECT key, rv, deleted, payload FROM object_sync "
            "WHERE node = ? AND acked_rv < rv ORDER BY rv",
            (node,),
        ).fetchall()
        return [Pending(node, k, rv, bool(d), self._load(k, p)) for k, rv, d, p in rows]

    def held(self, node: str) -> dict[str, int]:
        """Objects the node has confirmed and still holds: key -> acked version."""
        rows = self._db.execute(
            "SELECT key, acked_rv FROM object_sync WHERE node = ? AND deleted = 0 AND acked_rv > 0",
            (node,),
        ).fetchall()
        return {str(k): int(rv) for k, rv in rows}

    def wanted(self, node: str, key: str) -> Pending | None:
        row = self._db.execute(
            "SELECT rv, deleted, payload FROM object_sync WHERE node = ? AND key = ?", (node, key)
        ).fetchone()
        return (
            None
            if row is None
            else Pending(node, key, int(row[0]), bool(row[1]), self._load(key, row[2]))
        )

    def nodes(self) -> list[str]:
        return [str(r[0]) for r in self._db.execute("SELECT DISTINCT node FROM object_sync")]
