"""Migration 0004 on a database from before issue 8: users and key slots appear, ID numbers get
a keyed-hash lookup column, and plaintext revocation reasons are sealed with the legacy key."""
import json
import sqlite3

import pytest
from alembic import command
from cryptography.exceptions import InvalidTag
from sqlalchemy import inspect, text

from clinic.crypto import FieldCipher
from clinic.db import alembic_config, make_engine, upgrade

KEY = bytes(range(32))
CERTNO = "310116194301011234"
REASON = "收错了病人：王秀英的卡"


def _db_at_0003(tmp_path, *, with_key=True, rows=True):
    path = tmp_path / "clinic.db"
    if with_key:
        (tmp_path / "keys").mkdir()
        (tmp_path / "keys" / "data.key").write_bytes(KEY)
    engine = make_engine(f"sqlite:///{path}")
    cfg = alembic_config(str(engine.url))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")
        if rows:
            cipher = FieldCipher(KEY)
            payload = {"person": {"psn_no": "P1", "certno": CERTNO, "psn_name": "王秀英"},
                       "cred": {"mdtrt_cert_type": "02", "certno": CERTNO}}
            sealed = cipher.seal_text(json.dumps(payload, ensure_ascii=False),
                                      "visit.person_sealed|v1")
            conn.execute(text(
                "INSERT INTO visit (id, created_at, business_date, state, opter, cert_type,"
                " person_sealed, items_json, verdicts_json, revoke_reason) VALUES ('v1',"
                " '2026-11-29T10:00', '2026-11-29', 'revoked', 'D1', '02', :s, '[]', '[]', :r)"),
                {"s": sealed, "r": REASON})
            conn.execute(text(
                "INSERT INTO visit (id, created_at, business_date, state, opter, cert_type,"
                " items_json, verdicts_json) VALUES ('v2', '2026-11-29T11:00', '2026-11-29',"
                " 'new', 'D1', '03', '[]', '[]')"))
            conn.execute(text("INSERT INTO visit_transition (visit_id, from_state, to_state, at)"
                              " VALUES ('v1', 'settled', 'revoked', '2026-11-29T10:00')"))
    return path, engine


def test_upgrade_from_0003_seals_reasons_and_indexes_id_numbers(tmp_path):
    path, engine = _db_at_0003(tmp_path)
    upgrade(engine, "0004")
    cols = {c["name"] for c in inspect(engine).get_columns("visit")}
    assert "revoke_reason" not in cols and {"certno_ref", "revoke_reason_sealed"} <= cols
    assert {"app_user", "key_slot"} <= set(inspect(engine).get_table_names())
    assert "ix_visit_certno_ref" in {i["name"] for i in inspect(engine).get_indexes("visit")}
    cipher = FieldCipher(KEY)
    with engine.connect() as conn:
        v1 = conn.execute(text("SELECT certno_ref, revoke_reason_sealed FROM visit "
                               "WHERE id='v1'")).one()
        v2 = conn.execute(text("SELECT certno_ref, revoke_reason_sealed FROM visit "
                               "WHERE id='v2'")).one()
        assert conn.execute(text("SELECT count(*) FROM visit_transition")).scalar() == 1
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0004"
    assert v1.certno_ref == cipher.keyed_hash(CERTNO)
    assert cipher.open_text(v1.revoke_reason_sealed, "visit.revoke_reason|v1") == REASON
    with pytest.raises(InvalidTag):  # bound to its row
        cipher.open_text(v1.revoke_reason_sealed, "visit.revoke_reason|v2")
    assert tuple(v2) == (None, None)
    engine.dispose()
    # No plaintext reason left anywhere in the file once the WAL is checkpointed into it: the
    # column is dropped by rewriting the rows, without a VACUUM.
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    assert REASON.encode() not in path.read_bytes()


def test_upgrade_without_the_legacy_key_stops_with_a_clear_message(tmp_path):
    _, engine = _db_at_0003(tmp_path, with_key=False)
    with pytest.raises(RuntimeError) as exc:
        upgrade(engine, "0004")
    assert "keys/data.key" in str(exc.value)
    with engine.connect() as conn:  # nothing half-done: still 0003, reason still there
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0003"
        assert conn.execute(text("SELECT revoke_reason FROM visit WHERE id='v1'")).scalar() == REASON
    assert "app_user" not in inspect(engine).get_table_names()  # the DDL rolled back too
    # As the message says: the key file put back, the next start upgrades.
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "data.key").write_bytes(KEY)
    upgrade(engine, "0004")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0004"
    engine.dispose()


def test_an_empty_installation_upgrades_without_any_key(tmp_path):
    _, engine = _db_at_0003(tmp_path, with_key=False, rows=False)
    upgrade(engine, "0004")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0004"
    assert not (tmp_path / "keys").exists()
    engine.dispose()


def test_upgrade_with_a_key_file_that_does_not_open_the_rows_stops_clearly(tmp_path):
    _, engine = _db_at_0003(tmp_path)
    (tmp_path / "keys" / "data.key").write_bytes(bytes(32))  # another key
    with pytest.raises(RuntimeError) as exc:
        upgrade(engine, "0004")
    assert "无法用 keys/data.key 解开" in str(exc.value)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0003"
    engine.dispose()
