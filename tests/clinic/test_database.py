import sqlite3

from sqlalchemy import inspect, text

from clinic.db import MIGRATIONS, open_database


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
    head = con.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    assert head == max(p.name[:4] for p in (MIGRATIONS / "versions").glob("0*.py"))
    # Opening again is a no-op upgrade, not an error.
    open_database(tmp_path / "c.db")


def test_a_database_from_the_first_version_upgrades_with_its_data(tmp_path):
    from alembic import command

    from clinic.db import alembic_config, make_engine, upgrade
    path = tmp_path / "old.db"
    engine = make_engine(f"sqlite:///{path}")
    cfg = alembic_config(str(engine.url))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.execute(text(
            "INSERT INTO visit (id, created_at, business_date, state, opter, cert_type, items_json,"
            " verdicts_json) VALUES ('v1', '2026-11-29T10:00', '2026-11-29', 'settled', 'D1', '03',"
            " '[]', '[]')"))
        conn.execute(text("INSERT INTO visit_transition (visit_id, from_state, to_state, at)"
                          " VALUES ('v1', 'settling', 'settled', '2026-11-29T10:00')"))
    upgrade(engine)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT state, self_pay, revoke_setl_id FROM visit")).one()
        assert tuple(row) == ("settled", 0, None)
        assert conn.execute(text("SELECT count(*) FROM visit_transition")).scalar() == 1
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() != "0001"


def test_the_models_describe_the_schema_the_migrations_build(tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import MetaData

    from clinic.models import Base
    from settlement.journal import journal_metadata
    both = MetaData()
    for table in (*Base.metadata.tables.values(), *journal_metadata.tables.values()):
        table.to_metadata(both)
    engine = open_database(tmp_path / "c.db")
    with engine.connect() as conn:  # tables, columns, indexes (an index's WHERE is not compared)
        assert compare_metadata(MigrationContext.configure(conn), both) == []
    engine.dispose()
