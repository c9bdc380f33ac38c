import sqlite3

from clinic.audit import Actor, AuditLog, verify
from clinic.backup import create_backup
from clinic.db import make_engine, open_database


def test_backup_is_a_verified_standalone_copy_taken_while_writing(tmp_path):
    db = tmp_path / "clinic.db"
    engine = open_database(db)
    log = AuditLog(engine, Actor("H31011600001", "c1", "D1", "worker"))
    for i in range(50):
        log.append("settle", f"v{i}")
    held = sqlite3.connect(db)  # another reader holding the WAL open, as the running counter does
    held.execute("SELECT count(*) FROM audit_event").fetchone()
    out = create_backup(db, tmp_path / "backups")
    log.append("after_backup")
    assert out.exists() and not list((tmp_path / "backups").glob("*.part"))
    con = sqlite3.connect(out)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("SELECT count(*) FROM audit_event").fetchone()[0] == 50
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    report = verify(make_engine(f"sqlite:///{out}"))  # intact; no checkpoint yet, so "unproven"
    assert report.first_bad_seq is None and report.count == 50 and report.kind == ""
