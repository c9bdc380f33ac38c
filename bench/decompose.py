"""Where a visit's time goes: its own commit() calls, its own HTTP exchanges, and the rest.

`timed_io()` patches, for the process's new SQLite connections and every http.client
connection, the calls that wait on the disk or the network: `sqlite3.Connection.commit` (through
a connection factory, as the C type cannot be patched), `HTTPConnection.request` /
`getresponse` / `HTTPResponse.read`, and the insurer client's own request writer (`post`). The
floor's connections go through the same patches, so both sides pay the timers' cost. Used for a
second, instrumented pass only: the headline figures come from the plain pass.
"""
from __future__ import annotations

import http.client
import sqlite3
import sqlite3.dbapi2
import time
from collections.abc import Iterator
from contextlib import contextmanager

TIMES = {"commit": 0.0, "http": 0.0}


class _TimedConnection(sqlite3.Connection):
    def commit(self) -> None:
        t = time.perf_counter()
        try:
            super().commit()
        finally:
            TIMES["commit"] += time.perf_counter() - t


def _timed(fn):
    def call(*args, **kwargs):
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            TIMES["http"] += time.perf_counter() - t
    return call


@contextmanager
def timed_io() -> Iterator[None]:
    """Time commits of SQLite connections opened inside the block, and all HTTP exchanges."""
    connect = sqlite3.dbapi2.connect

    def timed_connect(*args, **kwargs):
        kwargs.setdefault("factory", _TimedConnection)
        return connect(*args, **kwargs)
    from settlement.client import _OneWrite  # the insurer client's own request writer
    patched = [(http.client.HTTPConnection, "request"), (_OneWrite, "post"),
               (http.client.HTTPConnection, "getresponse"), (http.client.HTTPResponse, "read")]
    saved = [(cls, name, cls.__dict__[name]) for cls, name in patched]
    sqlite3.dbapi2.connect = sqlite3.connect = timed_connect  # SQLAlchemy calls dbapi2.connect
    for cls, name, fn in saved:
        setattr(cls, name, _timed(fn))
    try:
        yield
    finally:
        sqlite3.dbapi2.connect = sqlite3.connect = connect
        for cls, name, fn in saved:
            setattr(cls, name, fn)


def split(run) -> tuple[float, float, float, float]:
    """(total, commit, http, rest) seconds of one call of `run`."""
    TIMES["commit"] = TIMES["http"] = 0.0
    t = time.perf_counter()
    run()
    total = time.perf_counter() - t
    return total, TIMES["commit"], TIMES["http"], total - TIMES["commit"] - TIMES["http"]
