"""DBAPI transactions for the few fixed statements on every call's path (the journal's, and the
clinic's `raw_tx` / `raw_read`), on the engine's pooled connections (its pragmas applied).

Each transaction takes a connection from the pool and gives it back, unless the caller has
pinned one for a stretch of work (`with pinned(engine):`, e.g. one visit): then the
transactions in that thread reuse it, which saves a pool checkout and return (about 15 µs)
each. Transactions are the same either way: each one commits, or rolls back, on its own.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

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
    """(pooled connection, whether this caller checked it out and must give it back)."""
    held = _PINNED.get()
    if held is not None and held[0] is engine:
        return held[1], False
    return engine.raw_connection(), True


# Classes rather than @contextmanager generators, and the driver's connection rather than the
# pool's proxy (which forwards commit() through __getattr__): these run several times per call.

class _Cursor:
    """A cursor on the pinned or a checked-out connection; gives back what it checked out."""
    __slots__ = ("_conn", "_cur", "_engine", "_own", "_pooled")

    def __init__(self, engine: Engine):
        self._engine = engine

    def __enter__(self) -> Any:
        self._pooled, self._own = _connection(self._engine)
        try:
            self._conn = self._pooled.dbapi_connection
            self._cur = self._conn.cursor()
        except BaseException:
            if self._own:
                self._pooled.close()
            raise
        return self._cur


class transaction(_Cursor):  # lower case: it replaced a function, and reads as one in `with`
    """A cursor in a transaction committed at the end of the block, rolled back on an error."""
    __slots__ = ()

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            try:
                if exc_type is None:
                    self._conn.commit()
                    return
            except BaseException:
                self._conn.rollback()
                raise
            self._conn.rollback()
        finally:
            self._cur.close()
            if self._own:
                self._pooled.close()


class reading(_Cursor):  # lower case, like transaction
    """A cursor for reads; SQLite's driver opens no transaction for a SELECT."""
    __slots__ = ()

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self._cur.close()  # a half-read statement would otherwise keep its snapshot
        finally:
            if self._own:
                self._pooled.close()
