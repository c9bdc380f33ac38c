"""settlement.dbapi: each transaction commits, or rolls back, on its own, pinned or not."""
from __future__ import annotations

import sqlite3
from contextlib import nullcontext

import pytest

from clinic.db import make_engine
from settlement import dbapi


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'd.db'}")
    with dbapi.transaction(engine) as cur:
        cur.execute("CREATE TABLE p (id INTEGER PRIMARY KEY)")
        cur.execute("CREATE TABLE c (pid INTEGER REFERENCES p (id) DEFERRABLE INITIALLY DEFERRED)")
    yield engine
    engine.dispose()


def _count(engine, table: str) -> int:
    with dbapi.reading(engine) as cur:
        return cur.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


@pytest.mark.parametrize("pin", [False, True])
def test_commit_rollback_and_a_failed_commit(engine, pin):
    def run():
        with dbapi.transaction(engine) as cur:
            cur.execute("INSERT INTO p (id) VALUES (1)")
        with pytest.raises(ZeroDivisionError), dbapi.transaction(engine) as cur:
            cur.execute("INSERT INTO p (id) VALUES (2)")
            raise ZeroDivisionError
        with pytest.raises(sqlite3.IntegrityError), dbapi.transaction(engine) as cur:
            cur.execute("INSERT INTO p (id) VALUES (3)")
            cur.execute("INSERT INTO c (pid) VALUES (99)")  # refused only at commit()
        with dbapi.transaction(engine) as cur:  # the connection goes on working
            cur.execute("INSERT INTO c (pid) VALUES (1)")
        assert _count(engine, "p") == 1 and _count(engine, "c") == 1

    if pin:
        with dbapi.pinned(engine):
            run()
            assert engine.pool.checkedout() == 1
    else:
        run()
    assert engine.pool.checkedout() == 0  # every connection went back to the pool


@pytest.mark.parametrize("pin", [False, True])
def test_a_read_leaves_no_statement_open(engine, pin):
    with dbapi.transaction(engine) as cur:
        cur.executemany("INSERT INTO p (id) VALUES (?)", [(1,), (2,)])
    with dbapi.pinned(engine) if pin else nullcontext():
        with dbapi.reading(engine) as cur:
            assert cur.execute("SELECT id FROM p").fetchone() is not None  # half read
        with pytest.raises(sqlite3.ProgrammingError, match="closed cursor"):
            cur.fetchone()
    assert engine.pool.checkedout() == 0
