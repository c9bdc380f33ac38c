"""Only unresolved visits are indexed by state (migration 0005): the queries that look for them
read the partial index, a visit that settles normally is in it only while settling, and the
patient history reads that patient's visits, not every settled one."""
from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import datetime
from types import SimpleNamespace

import pytest
from auth_helpers import admin_session
from sqlalchemy import event
from sqlalchemy.engine import Engine

from clinic import counter as counter_module
from clinic import visit_state as vs
from clinic.cli import main
from clinic.config import load_settings
from clinic.counter import Counter

INDEX = "ix_visit_unresolved"


@pytest.fixture
def counter(tmp_path):
    settings = load_settings(home=tmp_path / "clinic")
    c = Counter(settings, admin_session(settings), clock=lambda: datetime(2026, 11, 30, 9, 0))
    yield c
    c.close()


def _insert_visit(engine, visit_id, state, psn_ref="p1"):
    row = {"id": visit_id, "created_at": "2026-11-30T09:00:00", "business_date": "2026-11-30",
           "state": state, "opter": "D0001", "cert_type": "02", "psn_ref": psn_ref,
           "items_json": "[]", "verdicts_json": "[]", "self_pay": False}
    with engine.begin() as conn:
        conn.exec_driver_sql(f"INSERT INTO visit ({', '.join(row)}) "
                             f"VALUES ({', '.join('?' * len(row))})", tuple(row.values()))


def _plan(engine, sql, args=()):
    with engine.connect() as conn:
        return " / ".join(r[-1] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}",
                                                              tuple(args)))


def _indexed(engine):
    """The states the partial index holds entries for, read from the index itself."""
    with engine.connect() as conn:
        return [r[0] for r in conn.exec_driver_sql(
            f"SELECT state FROM visit INDEXED BY {INDEX} WHERE {vs.UNRESOLVED_SQL}")]


@pytest.fixture
def sent(monkeypatch):
    """The counter's raw reads, (sql, args) exactly as sent."""
    seen = []
    real = counter_module.raw_read

    @contextmanager
    def recording(engine):
        with real(engine) as cur:
            class Cur:
                def execute(self, sql, args=()):
                    seen.append((sql, args))
                    return cur.execute(sql, args)
            yield Cur()

    monkeypatch.setattr(counter_module, "raw_read", recording)
    return seen


def test_unresolved_visits_reads_the_partial_index(counter, sent):
    for n, state in enumerate([vs.SETTLING, vs.UNKNOWN, vs.REVOKING, vs.REVERSING, vs.SETTLED,
                               vs.PRESETTLED, vs.NEW]):
        _insert_visit(counter.engine, f"v{n}", state, psn_ref="p1" if n % 2 else "p2")
    assert sorted(counter.unresolved_visits()) == ["v0", "v1", "v2", "v3"]
    assert sorted(counter.unresolved_visits("p1")) == ["v1", "v3"]
    (every, every_args), (one, one_args) = sent
    assert f"USING INDEX {INDEX}" in _plan(counter.engine, every, every_args)
    # With a patient, SQLite may as well start from that patient's few visits: an index either way.
    assert "SCAN" not in _plan(counter.engine, one, one_args)


def test_the_patient_history_reads_by_patient_not_by_state(counter, sent):
    _insert_visit(counter.engine, "v1", vs.SETTLED)
    counter.history(SimpleNamespace(psn_no="P1"))
    (sql, args), = sent
    assert "USING INDEX ix_visit_psn_ref" in _plan(counter.engine, sql, args)


def test_a_visit_is_in_the_index_only_while_settling(counter):
    _insert_visit(counter.engine, "v1", vs.NEW)
    held = {vs.NEW: _indexed(counter.engine)}
    for state in (vs.REGISTERED, vs.FEES_UPLOADED, vs.PRESETTLED, vs.SETTLING, vs.SETTLED):
        counter._advance("v1", state)
        held[state] = _indexed(counter.engine)
    assert held == {vs.NEW: [], vs.REGISTERED: [], vs.FEES_UPLOADED: [], vs.PRESETTLED: [],
                    vs.SETTLING: [vs.SETTLING], vs.SETTLED: []}
    with counter.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"


def test_the_cli_unresolved_listing_reads_the_partial_index(cli_admin, capsys):
    from clinic.db import open_database
    engine = open_database(load_settings().db_path)
    for n, state in enumerate([vs.UNKNOWN, vs.SETTLED, vs.REVOKING]):
        _insert_visit(engine, f"v{n}", state)
    seen = []

    def record(conn, cursor, sql, args, context, executemany):
        if "FROM visit" in sql:
            seen.append((sql, args))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        assert main(["visit", "list", "--unresolved", "--json"]) == 0
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    assert sorted(v["visit_id"] for v in json.loads(capsys.readouterr().out)) == ["v0", "v2"]
    (sql, args), = seen
    assert f"USING INDEX {INDEX}" in _plan(engine, sql, args)
    engine.dispose()
