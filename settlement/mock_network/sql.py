"""Plain DBAPI access for the per-request hot path (psycopg 3 or sqlite3).

The ORM models in db.py define the schema; the transactions a visit makes run here as plain
SQL on the request's connection: an ORM load and flush cost several times the statement
itself, and the simulator is CPU-bound (docs/simulator.md, "Load"). Statements are written
with `%s` placeholders and converted once for sqlite3 (`?`); psycopg prepares a statement on
the server after a few uses, so the hot ones are parsed and planned once per connection.

Values cross the two drivers differently: SQLite keeps dates and times as text in
SQLAlchemy's own format (so the ORM code still reads them back), booleans as 0/1.
"""
from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from typing import Any


class Db:
    """What a statement needs to know about the database it runs on."""

    def __init__(self, postgres: bool):
        self.postgres = postgres

    def q(self, sql: str) -> str:
        return sql if self.postgres else _to_qmark(sql)

    def dt(self, x: datetime | None) -> Any:
        """A DateTime column value as SQLAlchemy would store it."""
        if x is None or self.postgres:
            return x
        return x.strftime("%Y-%m-%d %H:%M:%S.%f")

    def boolean(self, x: bool) -> Any:
        return x if self.postgres else int(x)


@lru_cache(maxsize=256)
def _to_qmark(sql: str) -> str:
    return sql.replace("%s", "?")


def as_date(v: Any) -> date | None:
    """A Date column read back: psycopg gives a date, sqlite3 SQLAlchemy's ISO text."""
    if v is None or isinstance(v, date):
        return v
    return date.fromisoformat(v)


def next_serial(db: Db, cur, name: str) -> int:
    """A per-name serial inside the caller's transaction (as db.next_serial): a PostgreSQL
    sequence (no queue on one row until commit), on SQLite a counter row (writers are
    serialized anyway)."""
    if db.postgres:
        cur.execute(f"SELECT nextval('sim_serial_{name}')")
        return cur.fetchone()[0]
    # (no UPDATE ... RETURNING: it needs SQLite 3.35, older systems' Pythons link older ones)
    cur.execute("UPDATE counter SET value = value + 1 WHERE name = ?", (name,))
    if cur.rowcount == 0:
        cur.execute("INSERT INTO counter (name, value) VALUES (?, 1)", (name,))
        return 1
    cur.execute("SELECT value FROM counter WHERE name = ?", (name,))
    return cur.fetchone()[0]


def lock_key(db: Db, cur, key: str) -> None:
    """As db.lock_key: a transaction-scoped advisory lock on PostgreSQL; SQLite's writers
    are serialized already."""
    if db.postgres:
        cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (key,))
