"""One database connection held for the API server's life, spoken to through its DBAPI driver.

SQLAlchemy makes the schema and the connection (SQLite or PostgreSQL from one URL); the
statements of every request go straight to the driver: SQLAlchemy's per-statement machinery
(pool checkout, compiled-cache lookup, parameter processing, result wrapping) cost about seven
times what SQLite itself did for a read and a write. Transactions are explicit (BEGIN/COMMIT on
a connection in autocommit mode), so a read outside one holds no snapshot open on PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import Engine

Params = Mapping[str, Any]
_NAMED = re.compile(r":(\w+)")


class Sql:
    """Statements are written with `:name` parameters, turned into the driver's own style."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dbapi: Any = engine.dialect.dbapi
        self.sqlite = engine.dialect.name == "sqlite"
        self._styled: dict[str, str] = {}
        self._proxy: Any = None

    def styled(self, sql: str) -> str:
        """`sql` in the driver's parameter style (sqlite3 takes `:name`, psycopg `%(name)s`)."""
        if self.sqlite:
            return sql
        found = self._styled.get(sql)
        if found is None:
            found = self._styled[sql] = _NAMED.sub(r"%(\1)s", sql)
        return found

    def _driver(self) -> Any:
        if self._proxy is None:
            self._proxy = self.engine.raw_connection()
            driver = self._proxy.driver_connection
            if self.sqlite:
                driver.isolation_level = None  # no implicit BEGIN: ours are explicit
            else:
                driver.autocommit = True
        return self._proxy.driver_connection

    def _broken(self) -> bool:
        """The held connection is gone (PostgreSQL restarted, or ended the session): dropped,
        so the next statement opens a new one."""
        if self._proxy is None or not getattr(self._proxy.driver_connection, "closed", False):
            return False
        self._proxy.invalidate()
        self._proxy = None
        return True

    @contextmanager
    def _opened(self, statement: str, params: Params) -> Iterator[Cursor]:
        """A cursor that has run `statement`, the first of its unit of work: met by a broken
        connection, it ran nowhere, so it runs once more on a new one."""
        for attempt in (1, 2):
            raw = self._driver().cursor()
            try:
                raw.execute(self.styled(statement), params)
                break
            except self.dbapi.Error:
                raw.close()
                if attempt == 2 or not self._broken():
                    raise
        try:
            yield Cursor(self, raw)
        finally:
            raw.close()

    def first(self, sql: str, params: Params) -> Any:
        """The first row, or None (outside any transaction)."""
        with self._opened(sql, params) as cursor:
            return cursor.raw.fetchone()

    def rows(self, sql: str, params: Params) -> list[Any]:
        with self._opened(sql, params) as cursor:
            return list(cursor.raw.fetchall())

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        """Statements inside BEGIN ... COMMIT, rolled back if the block raises."""
        with self._opened("BEGIN", {}) as cursor:
            try:
                yield cursor
            except BaseException:
                if not self._broken():
                    cursor.run("ROLLBACK", {})
                raise
            cursor.run("COMMIT", {})

    def close(self) -> None:
        if self._proxy is not None:
            self._proxy.close()
            self._proxy = None


class Cursor:
    def __init__(self, sql: Sql, raw: Any) -> None:
        self.sql, self.raw = sql, raw

    def run(self, statement: str, params: Params) -> int:
        """Rows the statement changed."""
        self.raw.execute(self.sql.styled(statement), params)
        return int(self.raw.rowcount)

    def first(self, statement: str, params: Params) -> Any:
        self.raw.execute(self.sql.styled(statement), params)
        return self.raw.fetchone()

    def rows(self, statement: str, params: Params) -> list[Any]:
        self.raw.execute(self.sql.styled(statement), params)
        return list(self.raw.fetchall())
