import sqlite3

import pytest

from clinic.audit import Actor, AuditLog, verify
from clinic.backup import (
    BackupError,
    CounterRunning,
    OtherKey,
    create_backup,
    decrypt_bytes,
    restore_backup,
    verify_backup,
)
from clinic.crypto import FieldCipher
from clinic.db import make_engine, open_database

KEY = bytes(range(32))
MARKER = "MARKER-王秀英-310116194301011234"
ITEMS_MARKER = "ITEMS-MARKER-硝苯地平"


def _add_visit(engine, visit_id="v1", key=KEY):
    sealed = FieldCipher(key).seal_text(MARKER, f"visit.person_sealed|{visit_id}")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO visit (id, created_at, business_date, state, opter, cert_type,"
            " person_sealed, items_json, verdicts_json) VALUES (?, '2026-11-30T09:00',"
            " '2026-11-30', 'settled', 'D1', '02', ?, ?, '[]')",
            (visit_id, sealed, f'["{ITEMS_MARKER}"]'))
    return sealed


def _decrypted_db(path, key=KEY):
    plain, _ = decrypt_bytes(path.read_bytes(), key)
    con = sqlite3.connect(":memory:")
    con.deserialize(plain)
    return con


def test_backup_is_a_verified_encrypted_copy_taken_while_writing(tmp_path):
    db = tmp_path / "clinic.db"
    engine = open_database(db)
    log = AuditLog(engine, Actor("H31011600001", "c1", "D1", "worker"))
    for i in range(50):
        log.append("settle", f"v{i}")
    held = sqlite3.connect(db)  # another reader holding the WAL open, as the running counter does
    held.execute("SELECT count(*) FROM audit_event").fetchone()
    out = create_backup(db, tmp_path / "backups", KEY)
    log.append("after_backup")
    assert out.exists() and out.suffix == ".cbk"
    assert [p.name for p in (tmp_path / "backups").iterdir()] == [out.name]  # no .part left
    assert out.stat().st_mode & 0o077 == 0
    info = verify_backup(out, KEY)
    assert info.counts["audit_event"] == 50 and info.schema
    con = _decrypted_db(out)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("SELECT count(*) FROM audit_event").fetchone()[0] == 50
    # The decrypted copy is a standalone database the audit verifier accepts.
    plain, _ = decrypt_bytes(out.read_bytes(), KEY)
    copy = tmp_path / "copy.db"
    copy.write_bytes(plain)
    report = verify(make_engine(f"sqlite:///{copy}"))
    assert report.first_bad_seq is None and report.count == 50
    held.close()
    engine.dispose()


def test_the_backups_dir_holds_no_plaintext(tmp_path):
    db = tmp_path / "clinic.db"
    engine = open_database(db)
    sealed = _add_visit(engine)
    out = create_backup(db, tmp_path / "backups", KEY)
    engine.dispose()
    restore_backup(out, db, KEY, tmp_path / "backups")
    files = list((tmp_path / "backups").iterdir())
    assert len(files) == 2  # the backup and the database kept aside before the restore
    for f in files:
        raw = f.read_bytes()
        assert b"SQLite format 3" not in raw
        assert sealed not in raw  # not even the sealed field's ciphertext
        assert sealed[13:40] not in raw
        assert ITEMS_MARKER.encode() not in raw and MARKER.encode() not in raw
        assert ITEMS_MARKER.encode("utf-16-le") not in raw
    assert {p.name for p in tmp_path.iterdir()} == {"clinic.db", "backups"}  # no temp files


def test_backup_round_trip_restores_the_data(tmp_path):
    db = tmp_path / "clinic.db"
    engine = open_database(db)
    _add_visit(engine, "v1")
    out = create_backup(db, tmp_path / "backups", KEY)
    _add_visit(engine, "v2")  # made after the backup: gone after the restore, kept aside
    engine.dispose()
    info, kept = restore_backup(out, db, KEY, tmp_path / "backups")
    assert info.counts["visit"] == 1
    engine = open_database(db)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT id, person_sealed FROM visit").all()
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    assert [r[0] for r in rows] == ["v1"]
    assert FieldCipher(KEY).open_text(rows[0][1], "visit.person_sealed|v1") == MARKER
    # The database as it was before the restore is an encrypted, verified backup.
    assert kept.name.startswith("before-restore-") and verify_backup(kept, KEY).counts["visit"] == 2
    engine.dispose()


def test_a_backup_with_a_flipped_bit_is_refused(tmp_path):
    db = tmp_path / "clinic.db"
    engine = open_database(db)
    _add_visit(engine)
    out = create_backup(db, tmp_path / "backups", KEY)
    engine.dispose()
    good = out.read_bytes()
    for pos in (9, 40, len(good) // 2, len(good) - 1):  # header key id, salt, body, tag
        bad = bytearray(good)
        bad[pos] ^= 0x04
        out.write_bytes(bytes(bad))
        with pytest.raises(BackupError):
            verify_backup(out, KEY)
        before = db.read_bytes()
        with pytest.raises(BackupError):
            restore_backup(out, db, KEY, tmp_path / "backups")
        assert db.read_bytes() == before  # nothing replaced
    out.write_bytes(good[:-100])  # truncated
    with pytest.raises(BackupError):
        verify_backup(out, KEY)


def test_a_backup_under_another_key_is_refused_clearly(tmp_path):
    db = tmp_path / "clinic.db"
    engine = open_database(db)
    _add_visit(engine)
    out = create_backup(db, tmp_path / "backups", KEY)
    engine.dispose()
    other = bytes(32)
    with pytest.raises(OtherKey) as exc:
        verify_backup(out, other)
    assert "另一套数据密钥" in exc.value.message
    with pytest.raises(OtherKey):
        restore_backup(out, db, other, tmp_path / "backups")
    assert verify_backup(out, KEY).counts["visit"] == 1


def test_restore_is_refused_while_the_database_is_in_use(tmp_path):
    db = tmp_path / "clinic.db"
    engine = open_database(db)
    _add_visit(engine)
    out = create_backup(db, tmp_path / "backups", KEY)
    with engine.connect() as conn:  # a running counter
        conn.exec_driver_sql("SELECT count(*) FROM visit").scalar()
        with pytest.raises(CounterRunning) as exc:
            restore_backup(out, db, KEY, tmp_path / "backups")
    assert "关闭" in exc.value.message
    assert [p.name for p in (tmp_path / "backups").iterdir()] == [out.name]
    engine.dispose()


def test_backing_up_a_missing_database_is_refused_and_creates_nothing(tmp_path):
    with pytest.raises(BackupError):
        create_backup(tmp_path / "clinic.db", tmp_path / "backups", KEY)
    assert not (tmp_path / "clinic.db").exists()
