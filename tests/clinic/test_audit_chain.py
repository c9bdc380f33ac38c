import sqlite3
import subprocess
import sys

import pytest

from clinic import audit_keys
from clinic.audit import Actor, AuditLog, verify
from clinic.db import open_database

pytestmark = pytest.mark.usefixtures("cli_admin")  # `clinic` processes log in


@pytest.fixture
def chain(tmp_path):
    path = tmp_path / "clinic.db"
    engine = open_database(path)
    log = AuditLog(engine, Actor("H31011600001", "counter-1", "D0001", "worker"))
    for i in range(6):
        log.append("settle", f"visit-{i}", "ok", fen=100 * i)
    log.checkpoint(tmp_path / "keys", "day_close")  # signed head: completeness provable
    return path, engine


def _key(path):
    return audit_keys.public_raw(audit_keys.load_or_create_signing_key(path.parent / "keys"))


def _raw(path):
    """The file as an attacker with sqlite3 would see it: triggers dropped first."""
    con = sqlite3.connect(path)
    con.execute("DROP TRIGGER audit_event_no_update")
    con.execute("DROP TRIGGER audit_event_no_delete")
    return con


def test_intact_chain_verifies(chain):
    path, engine = chain
    report = verify(engine, _key(path))
    assert report.ok and report.count == 6


def test_intact_chain_without_a_covering_checkpoint_is_unproven_not_ok(chain):
    path, engine = chain
    AuditLog(engine, Actor("H31011600001", "counter-1", "D0001", "worker")).append("late")
    report = verify(engine, _key(path))
    assert report.intact and not report.ok and report.status == "unproven"


def test_database_refuses_update_and_delete_of_audit_events(chain):
    path, _ = chain
    con = sqlite3.connect(path)
    for sql in ("UPDATE audit_event SET outcome='x' WHERE seq=2", "DELETE FROM audit_event WHERE seq=2"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            con.execute(sql)


def test_modified_entry_is_named(chain):
    path, engine = chain
    con = _raw(path)
    con.execute("""UPDATE audit_event SET details='{"fen":1}' WHERE seq=4""")
    con.commit()
    report = verify(engine, _key(path))
    assert not report.ok and report.first_bad_seq == 4 and report.kind == "modified"


def test_deleted_entry_is_named(chain):
    path, engine = chain
    con = _raw(path)
    con.execute("DELETE FROM audit_event WHERE seq=3")
    con.commit()
    report = verify(engine, _key(path))
    assert not report.ok and report.first_bad_seq == 3 and report.kind == "deleted"


def test_rehashed_forgery_breaks_the_link_and_the_forged_entry_is_named(chain):
    from clinic.audit import event_hash
    path, engine = chain
    con = _raw(path)
    con.row_factory = sqlite3.Row
    row = dict(con.execute("SELECT * FROM audit_event WHERE seq=2").fetchone())
    row["outcome"] = "forged"
    row["hash"] = event_hash(row)
    con.execute("UPDATE audit_event SET outcome=?, hash=? WHERE seq=2", (row["outcome"], row["hash"]))
    con.commit()
    report = verify(engine, _key(path))
    # seq 3 no longer links to seq 2: the re-hashed entry 2 is the forgery, named as modified
    assert not report.ok and report.first_bad_seq == 2 and report.kind == "modified"


def test_cli_audit_verify_exits_nonzero_and_names_the_entry(chain):
    path, _ = chain
    con = _raw(path)
    con.execute("UPDATE audit_event SET action='tampered' WHERE seq=5")
    con.commit()
    proc = subprocess.run([sys.executable, "-m", "clinic", "audit", "verify", "--db", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert "seq 5" in proc.stderr and "modified" in proc.stderr
    assert "第 5 条" in proc.stdout
