"""The clinic's SQLite database: durable settings asserted on every connection, Alembic upgrades."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine

from settlement import dbapi

MIGRATIONS = Path(__file__).with_name("migrations")


class DatabaseSettingsError(RuntimeError):
    pass


def _pragmas(dbapi_conn, _record) -> None:
    # A confirmed settlement must survive a power cut: WAL + synchronous=FULL, checked, not hoped for.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    got = (cur.execute("PRAGMA journal_mode").fetchone()[0],
           cur.execute("PRAGMA synchronous").fetchone()[0],
           cur.execute("PRAGMA foreign_keys").fetchone()[0])
    cur.close()
    if got != ("wal", 2, 1):
        raise DatabaseSettingsError(f"SQLite settings not in force: {got}")


COMMITS = {"raw": 0}  # raw_tx commits, for benchmarks that count a visit's commits


@contextmanager
def raw_tx(engine: Engine) -> Iterator[Any]:
    """One transaction on a pooled DBAPI connection (pragmas applied by the engine), for the
    few fixed statements on every visit's path (audit appends, state transitions), where the
    SQL expression layer costs more than the statement itself. Inside `pinned(engine)` the
    thread's pinned connection is used (settlement.dbapi)."""
    with dbapi.transaction(engine) as cur:
        yield cur
    COMMITS["raw"] += 1


@contextmanager
def raw_read(engine: Engine) -> Iterator[Any]:
    """A cursor on a pooled DBAPI connection for a few fixed reads on every visit's path
    (unresolved visits, the patient's history, an audit event's visit context). No
    transaction is opened (SQLite's driver begins one only before a write)."""
    with dbapi.reading(engine) as cur:
        yield cur


pinned = dbapi.pinned  # one connection for a visit's raw transactions and reads (and the journal's)


def make_engine(url: str) -> Engine:
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _pragmas)
    return engine


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    cfg = alembic_config(str(engine.url))
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            # The driver opens a transaction only before INSERT/UPDATE/DELETE: without this BEGIN
            # each CREATE/DROP commits alone, and an upgrade that stops half-way cannot be rerun.
            conn.exec_driver_sql("BEGIN")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def open_database(db_path: Path) -> Engine:
    db_path.parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(f"sqlite:///{db_path}")
    upgrade(engine)
    return engine
