"""The clinic's own database: append-only tables, damage named in place, clock jumps, the
events' context, application start and stop."""
from __future__ import annotations

import json
import sqlite3
from datetime import date, datetime, timedelta

import pytest
from auth_helpers import admin_session

from clinic import audit_keys
from clinic.audit import Actor, AuditLog, event_hash, verify
from clinic.config import load_settings
from clinic.counter import Counter
from clinic.db import open_database
from settlement.values import Credential, Person

pytestmark = pytest.mark.usefixtures("cli_admin")  # `clinic` processes log in

ACTOR = Actor("H31011600001", "counter-1", "D0001", "worker")


class Clock:
    def __init__(self, t: datetime):
        self.t = t

    def __call__(self) -> datetime:
        return self.t


@pytest.fixture
def db(tmp_path):
    engine = open_database(tmp_path / "clinic.db")
    log = AuditLog(engine, ACTOR)
    for i in range(8):
        log.append("settle", f"visit-{i + 1}", "ok", fund=i)
    log.checkpoint(tmp_path / "keys", "day_close")
    pub = audit_keys.public_raw(audit_keys.load_or_create_signing_key(tmp_path / "keys"))
    yield tmp_path / "clinic.db", engine, log, pub
    engine.dispose()


def _raw(path):
    con = sqlite3.connect(path)
    con.row_factory = sqlite3.Row
    for t in ("audit_event_no_update", "audit_event_no_delete"):
        con.execute(f"DROP TRIGGER {t}")
    return con


def test_the_database_refuses_update_and_delete_of_checkpoints(db):
    path, *_ = db
    con = sqlite3.connect(path)
    for sql in ("UPDATE audit_checkpoint SET seq=1", "DELETE FROM audit_checkpoint"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            con.execute(sql)


def test_contents_swapped_between_two_seqs_are_named_reordered(db):
    path, engine, _, pub = db
    con = _raw(path)
    a, b = (dict(con.execute("SELECT * FROM audit_event WHERE seq=?", (s,)).fetchone())
            for s in (3, 4))
    cols = [c for c in a if c != "seq"]
    for src, dst in ((b, 3), (a, 4)):
        con.execute(f"UPDATE audit_event SET {', '.join(c + '=?' for c in cols)} WHERE seq=?",
                    [src[c] for c in cols] + [dst])
    con.commit()
    r = verify(engine, pub)
    assert (r.kind, r.first_bad_seq) == ("reordered", 3), r


def test_an_event_slipped_in_with_the_rest_renumbered_is_named_inserted(db):
    path, engine, _, pub = db
    con = _raw(path)
    con.execute("UPDATE audit_event SET seq = -seq WHERE seq >= 3")
    con.execute("UPDATE audit_event SET seq = -seq + 1 WHERE seq < 0")
    prev = con.execute("SELECT hash FROM audit_event WHERE seq=2").fetchone()[0]
    row = {"seq": 3, "ts": "2026-11-02T09:00:00.000", "clinic": ACTOR.clinic,
           "terminal": "counter-1", "operator": "D0001", "role": "worker", "action": "settle",
           "object": "forged", "outcome": "ok", "details": "{}", "prev_hash": prev}
    row["hash"] = event_hash(row)
    con.execute(f"INSERT INTO audit_event ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                list(row.values()))
    con.commit()
    r = verify(engine, pub)
    assert (r.kind, r.first_bad_seq) == ("inserted", 3), r


def test_deleting_the_tail_and_its_checkpoints_is_caught_by_a_checkpoint_that_left_the_pc(db):
    path, engine, log, pub = db
    carried = log.checkpoint(path.parent / "keys", "day_close")  # e.g. in the day-close report
    con = _raw(path)
    for t in ("audit_checkpoint_no_delete",):
        con.execute(f"DROP TRIGGER {t}")
    con.execute("DELETE FROM audit_event WHERE seq > 5")
    con.execute("DELETE FROM audit_checkpoint")
    con.commit()
    assert verify(engine, pub).status == "unproven"   # on its own the database cannot tell
    r = verify(engine, pub, [carried])
    assert (r.status, r.kind, r.first_bad_seq) == ("damaged", "truncated", 6)


def test_a_clock_set_back_is_recorded_as_a_clock_jump_before_the_event(tmp_path):
    engine = open_database(tmp_path / "c.db")
    clock = Clock(datetime(2026, 11, 30, 10, 0, 0))
    log = AuditLog(engine, ACTOR, clock)
    log.append("card_read")
    clock.t -= timedelta(seconds=1)           # within tolerance: two processes' readings
    log.append("card_read")
    clock.t -= timedelta(hours=2)
    seq = log.append("settle", "v1")
    con = sqlite3.connect(tmp_path / "c.db")
    rows = con.execute("SELECT seq, action, outcome, details FROM audit_event ORDER BY seq").fetchall()
    assert [r[1] for r in rows] == ["card_read", "card_read", "clock_jump", "settle"]
    assert seq == 4 and rows[2][2] == "detected"
    details = json.loads(rows[2][3])
    assert details["seconds"] < -7000 and details["to"].startswith("2026-11-30T07:59:59")


def test_a_clock_moved_forward_inside_a_process_is_recorded(tmp_path):
    engine = open_database(tmp_path / "c.db")
    clock = Clock(datetime(2026, 11, 30, 10, 0, 0))
    log = AuditLog(engine, ACTOR, clock)
    log.append("card_read")
    clock.t += timedelta(minutes=4)           # no time passed on the monotonic clock: a jump?
    log.append("card_read")                   # 4 minutes: within the drift tolerance
    clock.t += timedelta(hours=3)
    log.append("card_read")
    actions = [r[0] for r in sqlite3.connect(tmp_path / "c.db").execute(
        "SELECT action FROM audit_event ORDER BY seq")]
    assert actions == ["card_read", "card_read", "clock_jump", "card_read"]


def test_a_first_event_weeks_after_the_head_is_a_forward_jump_but_a_weekend_is_not(tmp_path):
    engine = open_database(tmp_path / "c.db")
    AuditLog(engine, ACTOR, Clock(datetime(2026, 11, 27, 18, 0))).append("app_stop")
    AuditLog(engine, ACTOR, Clock(datetime(2026, 11, 30, 8, 0))).append("app_start")
    AuditLog(engine, ACTOR, Clock(datetime(2027, 3, 1, 8, 0))).append("app_start")
    actions = [r[0] for r in sqlite3.connect(tmp_path / "c.db").execute(
        "SELECT action FROM audit_event ORDER BY seq")]
    assert actions == ["app_stop", "app_start", "clock_jump", "app_start"]


def test_the_counter_records_start_and_stop_and_signs_the_head_when_it_closes(tmp_path):
    settings = load_settings(home=tmp_path / "home")
    counter = Counter(settings, admin_session(settings))
    counter.close()
    engine = open_database(settings.db_path)
    rows = engine.connect().exec_driver_sql(
        "SELECT action, object, operator, role, clinic, terminal FROM audit_event").fetchall()
    assert [r[0] for r in rows] == ["user_add", "app_start", "app_stop"]  # the admin, then the counter
    assert all(all(r) for r in rows)
    pub = audit_keys.public_raw(audit_keys.load_or_create_signing_key(settings.keys_dir))
    assert verify(engine, pub).status == "ok"
    assert (settings.keys_dir / "audit_signing.key").stat().st_mode & 0o777 == 0o600


def test_visit_events_carry_protected_context_and_no_identifier_in_clear(tmp_path):
    settings = load_settings(home=tmp_path / "home")
    plain = settings.keys_dir / audit_keys.TOWN_KEY_FILE
    audit_keys.write_town_key(plain)                     # as the supervisor hands it over
    town = bytes.fromhex(plain.read_text())
    counter = Counter(settings, admin_session(settings))
    # Sealed under the data key at first use; the plain copy is gone from the data directory.
    sealed = (settings.keys_dir / audit_keys.TOWN_KEY_SEALED).read_bytes()
    assert not plain.exists() and town not in sealed and town.hex().encode() not in sealed
    assert audit_keys.town_key(settings.keys_dir, counter.cipher) == town
    person = Person("31011600000000001234", "王秀英", "310116194301011234", "2",
                    date(1943, 1, 1), 83, "390", "11", "1", 0, "310116")
    cred = Credential("03", "K31011600123", "SN123", person.certno, person.psn_name)
    from dataclasses import asdict
    items = [asdict(i) for i in counter.resolve_items([("xbdp", 2, 14)])]
    from clinic.models import Visit
    with counter.engine.begin() as conn:
        conn.execute(Visit.__table__.insert().values(
            id="v-1", created_at="2026-11-30T10:00:00", business_date="2026-11-30",
            state="settled", opter="D0001", cert_type="03",
            person_sealed=counter.seal_party("v-1", person, cred),
            psn_ref=counter.cipher.keyed_hash(person.psn_no), insutype="390", diagnosis="I10",
            items_json=json.dumps(items, ensure_ascii=False)))
    counter.audit.append("settle", "v-1", "ok", fund=4000, medfee=6340)
    counter.close()
    raw = (settings.db_path).read_bytes() + b"".join(
        p.read_bytes() for p in settings.home.glob("clinic.db-wal"))
    con = sqlite3.connect(settings.db_path)
    details = json.loads(con.execute(
        "SELECT details FROM audit_event WHERE action='settle'").fetchone()[0])
    assert details["psn_ref"] == counter.cipher.keyed_hash(person.psn_no)
    assert len(details["psn_town"]) == 24 and len(details["card_town"]) == 24
    assert details["rx"][0]["days"] == 14 and details["rx"][0]["atc"]
    assert details["diagnosis"] == "I10" and details["cert_type"] == "03"
    text = json.dumps(details, ensure_ascii=False)
    for secret in (person.psn_no, person.certno, person.psn_name, cred.mdtrt_cert_no):
        assert secret not in text
        assert secret.encode() not in raw


def test_configuration_and_formulary_changes_are_audited_with_every_field(tmp_path):
    engine = open_database(tmp_path / "c.db")
    log = AuditLog(engine, Actor("H31011600001", "counter-1", "A0001", "admin"))
    log.config_change("network_url", "http://a", "http://b", source="settings screen")
    log.formulary_change("1", "2", signer="town", digest="ab" * 32, added=3, removed=1)
    rows = sqlite3.connect(tmp_path / "c.db").execute(
        "SELECT action, object, outcome, details, role FROM audit_event ORDER BY seq").fetchall()
    assert [(r[0], r[1], r[2], r[4]) for r in rows] == [
        ("config_change", "network_url", "ok", "admin"), ("formulary_change", "2", "ok", "admin")]
    assert json.loads(rows[0][3]) == {"old": "http://a", "new": "http://b",
                                      "source": "settings screen"}
    assert json.loads(rows[1][3])["added"] == 3


@pytest.mark.usefixtures("cli_supervisor")
def test_the_town_key_is_made_once_and_never_overwritten(tmp_path):
    import subprocess
    import sys
    out = tmp_path / "town_pseudonym.key"
    run = [sys.executable, "-m", "clinic", "supervisor", "town-key", "--out", str(out)]
    assert subprocess.run(run, capture_output=True, check=False).returncode == 0
    first = out.read_text()
    assert len(bytes.fromhex(first.strip())) == 32 and out.stat().st_mode & 0o777 == 0o600
    assert subprocess.run(run, capture_output=True, check=False).returncode == 1
    assert out.read_text() == first
