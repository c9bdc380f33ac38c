"""DBAPI transactions for the few fixed statements on every call's path (the journal's, and the
clinic's `raw_tx` / `raw_read`), on the engine's pooled connections (its pragmas applied).

Each transaction takes a connection from the pool and gives it back, unless the caller has
pinned one for a stretch of work (`with pinned(engine):`, e.g. one visit): then the
transactions in that thread reuse it, which saves a pool checkout and return (about 15 µs)
each. Transactions are the same either way: each one commits, or rolls back, on its own.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator

from sqlalchemy.engine import Engine

# (engine, DBAPI connection) pinned in this thread / context, if any.
_PINNED: ContextVar[tuple[Engine, Any] | None] = ContextVar("settlement_dbapi_pinned",
                                                            default=None)


@contextmanager
def pinned(engine: Engine) -> Iterator[None]:
    """Keep one pooled connection for this thread's transactions on `engine` in the block."""
    held = _PINNED.get()
    if held is not None and held[0] is engine:
        yield  # already pinned further up
        return
    raw = engine.raw_connection()
    token = _PINNED.set((engine, raw))
    try:
        yield
    finally:
        _PINNED.reset(token)
        raw.close()  # back to the pool, which ends anything left open


def _connection(engine: Engine) -> tuple[Any, bool]:
    """(connection, whether this caller checked it out and must give it back)."""
    held = _PINNED.get()
    if held is not None and held[0] is engine:
        return held[1], False
    return engine.raw_connection(), True


@contextmanager
def transaction(engine: Engine) -> Iterator[Any]:
    """A cursor in a transaction committed at the end of the block, rolled back on an error."""
    raw, own = _connection(engine)
    try:
        cur = raw.cursor()
        try:
            yield cur
            raw.commit()
        except BaseException:
            raw.rollback()
            raise
        finally:
            cur.close()
    finally:
        if own:
            raw.close()


@contextmanager
def reading(engine: Engine) -> Iterator[Any]:
    """A cursor for reads; SQLite's driver opens no transaction for a SELECT."""
    raw, own = _connection(engine)
    try:
        cur = raw.cursor()
        try:
            yield cur
        finally:
            cur.close()  # a half-read statement would otherwise keep its snapshot
    finally:
        if own:
            raw.close()
