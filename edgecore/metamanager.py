"""MetaManager: everything the cloud sent, stored before it is acted on (edge autonomy).

Objects are kept by key (`device/<ns>/<name>`, `devicemodel/<ns>/<name>`, `pod/...`,
`configmap/...`, `secret/...`) with the
resourceVersion they came with; an older version than the stored one is ignored (the channel
may repeat or reorder), a deletion removes the object. An edgecore restarted while the cloud is
unreachable rebuilds its devices from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from devicetwin.spec import Document
from kedge.channel.routes import OBJECT_KINDS, kind_of
from kedge.sealing import Sealer
from kedge.sqlite import open_store

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    rv INTEGER NOT NULL,
    body TEXT
)
"""


def _sealed(key: str) -> bool:
    return key.startswith("secret/")


class MetaStore:
    """Secrets are stored sealed with `sealer` (the state dir's key)."""

    def __init__(self, path: Path, sealer: Sealer | None = None) -> None:
        self._db = open_store(path, SCHEMA)
        self._sealer = sealer

    def _dump(self, key: str, body: dict[str, Any]) -> str:
        text = orjson.dumps(body).decode()
        return self._sealer.seal(text, key) if self._sealer and _sealed(key) else text

    def _load(self, key: str, text: str) -> dict[str, Any]:
        if self._sealer is not None and _sealed(key):
            text = self._sealer.open(text, key)
        return dict(orjson.loads(text))

    def close(self) -> None:
        self._db.close()

    def apply(self, key: str, rv: int, body: dict[str, Any] | None) -> bool:
        """Store (or, with `body` None, delete) `key` at version `rv`; False when `rv` is not
        newer than what is stored. Deletions leave a tombstone so a late older update loses."""
        if kind_of(key) not in OBJECT_KINDS:
            raise ValueError(f"unknown object kind in key {key!r}")
        row = self._db.execute("SELECT rv FROM meta WHERE key = ?", (key,)).fetchone()
        if row is not None and row[0] >= rv:
            return False
        text = None if body is None else self._dump(key, body)
        self._db.execute(
            "INSERT INTO meta (key, rv, body) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET rv = excluded.rv, body = excluded.body",
            (key, rv, text),
        )
        return True

    def versions(self) -> dict[str, int]:
        """key -> version held (tombstones included), for a resync request."""
        return {str(k): int(rv) for k, rv in self._db.execute("SELECT key, rv FROM meta")}

    def documents(self) -> list[Document]:
        """The stored objects as manifest documents (models first), for devicetwin.spec."""
        rows = self._db.execute(
            "SELECT key, body FROM meta WHERE body IS NOT NULL "
            "AND (key LIKE 'device/%' OR key LIKE 'devicemodel/%') ORDER BY key DESC"
        ).fetchall()  # "devicemodel/..." sorts after "device/...": DESC puts models first
        return [Document(f"cloud {key}", 1, orjson.loads(body)) for key, body in rows]

    def objects(self, kind: str) -> list[dict[str, Any]]:
        """Every stored object of one kind (`pod`, `configmap`, ...)."""
        rows = self._db.execute(
            "SELECT key, body FROM meta WHERE body IS NOT NULL AND key LIKE ? ORDER BY key",
            (f"{kind}/%",),
        ).fetchall()
        return [self._load(key, body) for key, body in rows]

    def get(self, key: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT body FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None or row[0] is None else self._load(key, row[0])
