import sqlite3

from sqlalchemy import inspect, text

from clinic.db import open_database


def test_every_connection_runs_wal_full_sync_and_foreign_keys(tmp_path):
    engine = open_database(tmp_path / "c.db")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_alembic_creates_the_schema_from_the_first_migration(tmp_path):
    engine = open_database(tmp_path / "c.db")
    names = set(inspect(engine).get_table_names())
    assert {"visit", "visit_transition", "sign_in", "audit_event", "journal_message",
            "journal_msgid_clock", "alembic_version"} <= names
    con = sqlite3.connect(tmp_path / "c.db")
    assert con.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0001"
    # Opening again is a no-op upgrade, not an error.
    open_database(tmp_path / "c.db")
