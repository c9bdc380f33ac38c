"""Migration 0005 on a database from 0004 with visits in every kind of state: the three indexes
nothing reads are gone, the partial index holds exactly the unresolved visits, no row changes;
downgrade brings the old indexes back; an upgrade that stops half-way drops nothing."""
import sqlite3

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from clinic import visit_state as vs
from clinic.db import alembic_config, make_engine, upgrade

DROPPED = {"ix_audit_event_action", "ix_visit_transition_visit_id", "ix_visit_state"}
STATES = {"a": vs.SETTLED, "b": vs.SETTLING, "c": vs.UNKNOWN, "d": vs.REVOKED, "e": vs.REVOKING,
          "f": vs.REVERSING, "g": vs.NEW, "h": vs.FAILED}


def _db_at_0004(tmp_path):
    path = tmp_path / "clinic.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine, "0004")
    with engine.begin() as conn:
        for visit_id, state in STATES.items():
            conn.execute(text(
                "INSERT INTO visit (id, created_at, business_date, state, opter, cert_type,"
                " items_json, verdicts_json) VALUES (:id, '2026-11-29T10:00', '2026-11-29',"
                " :state, 'D1', '03', '[]', '[]')"), {"id": visit_id, "state": state})
            conn.execute(text("INSERT INTO visit_transition (visit_id, from_state, to_state, at)"
                              " VALUES (:id, 'new', :state, '2026-11-29T10:00')"),
                         {"id": visit_id, "state": state})
        conn.execute(text(
            "INSERT INTO audit_event (seq, ts, clinic, terminal, operator, role, action, object,"
            " outcome, details, prev_hash, hash) VALUES (1, '2026-11-29T10:00', 'H1', 't', 'D1',"
            " 'admin', 'settle', 'a', 'ok', '{}', '0', '1')"))
    return path, engine


def _indexes(path):
    con = sqlite3.connect(path)
    try:
        return {name: sql for name, sql in con.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")}
    finally:
        con.close()


def _rows(path):
    con = sqlite3.connect(path)
    try:
        return [con.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
                for t in ("visit", "visit_transition", "audit_event")]
    finally:
        con.close()


def _version(engine):
    with engine.connect() as conn:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def test_upgrade_from_0004_keeps_every_row_and_indexes_only_unresolved_visits(tmp_path):
    path, engine = _db_at_0004(tmp_path)
    before = _rows(path)
    upgrade(engine, "0005")
    assert _version(engine) == "0005"
    indexes = _indexes(path)
    assert not DROPPED & set(indexes)
    assert "WHERE" in indexes["ix_visit_unresolved"]
    assert _rows(path) == before
    with engine.connect() as conn:
        held = conn.execute(text(f"SELECT id FROM visit INDEXED BY ix_visit_unresolved "
                                 f"WHERE {vs.UNRESOLVED_SQL} ORDER BY id")).scalars().all()
        assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
        assert conn.execute(text("PRAGMA foreign_key_check")).all() == []
    assert held == ["b", "c", "e", "f"]
    engine.dispose()


def test_downgrade_to_0004_brings_the_indexes_back(tmp_path):
    path, engine = _db_at_0004(tmp_path)
    at_0004 = _indexes(path)
    upgrade(engine, "0005")
    cfg = alembic_config(str(engine.url))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0004")
    assert _version(engine) == "0004"
    assert _indexes(path) == at_0004
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    engine.dispose()


def test_an_upgrade_that_stops_half_way_drops_nothing(tmp_path):
    path, engine = _db_at_0004(tmp_path)
    at_0004 = _indexes(path)
    with engine.begin() as conn:  # the new index's name taken: 0005 fails after its drops
        conn.execute(text("CREATE INDEX ix_visit_unresolved ON sign_in (opter)"))
    with pytest.raises(OperationalError):
        upgrade(engine, "0005")
    assert _version(engine) == "0004"
    assert DROPPED <= set(_indexes(path)) and set(at_0004) <= set(_indexes(path))
    engine.dispose()
