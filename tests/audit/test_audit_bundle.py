"""`clinic audit export` and `clinic audit verify` as the clinic and the supervisor run them."""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from datetime import datetime, timedelta

import pytest

from clinic import audit_keys
from clinic.audit import Actor, AuditLog
from clinic.config import load_settings
from clinic.db import open_database


def clinic(*args):
    import os
    from pathlib import Path

    from auth_helpers import ensure_admin
    ensure_admin(Path(os.environ["CLINIC_HOME"]))  # after the test's own events: it logs in
    return subprocess.run([sys.executable, "-m", "clinic", *args], capture_output=True, text=True,
                          timeout=60, check=False)


class Clock:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        self.t += timedelta(seconds=30)
        return self.t


@pytest.fixture
def home():
    """Three days of events in the clinic's own database (CLINIC_HOME of this test)."""
    settings = load_settings()
    engine = open_database(settings.db_path)
    for day in (1, 2, 3):
        log = AuditLog(engine, Actor(settings.fixmedins_code, "counter-1", "D0001", "worker"),
                       Clock(datetime(2026, 11, day, 8, 0)))
        for i in range(5):
            log.append("settle", f"visit-{day}-{i}", "ok", fund=100 * i)
        log.checkpoint(settings.keys_dir, "day_close")
    engine.dispose()
    return settings


def _rezip(src, dst, change):
    with zipfile.ZipFile(src) as z:
        files = {n: z.read(n) for n in z.namelist()}
    files = change(files)
    with zipfile.ZipFile(dst, "w") as z:
        for n, data in files.items():
            z.writestr(n, data)
    return dst


def test_an_exported_bundle_verifies_ok_against_the_clinics_pinned_key(home, tmp_path):
    out = tmp_path / "audit.zip"
    exp = clinic("audit", "export", "--out", str(out))
    assert exp.returncode == 0, exp.stderr
    assert clinic("audit", "pubkey", "--out", str(tmp_path / "clinic.pub")).returncode == 0
    r = clinic("audit", "verify", "--bundle", str(out), "--key", str(tmp_path / "clinic.pub"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "审计链完整" in r.stdout
    with zipfile.ZipFile(out) as z:
        m = json.loads(z.read("manifest.json"))
        names = set(z.namelist())
    assert names == {"manifest.json", "manifest.sig", "events.jsonl", "checkpoints.jsonl",
                     "public_key.pem"}
    assert m["clinic"] == home.fixmedins_code and m["first_seq"] == 1
    # 15 events, the administrator's creation (the first `clinic` run), and the export itself
    assert m["last_seq"] == m["count"] == 17


def test_a_date_range_exports_a_middle_piece_that_still_verifies(home, tmp_path):
    out = tmp_path / "day2.zip"
    assert clinic("audit", "export", "--out", str(out), "--from", "2026-11-02",
                  "--to", "2026-11-02").returncode == 0
    r = clinic("audit", "verify", "--bundle", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    m = json.loads(zipfile.ZipFile(out).read("manifest.json"))
    assert (m["first_seq"], m["last_seq"]) == (6, 10) and m["first_prev_hash"] != "0" * 64


def test_a_bundle_signed_by_another_key_is_refused_as_wrong_key(home, tmp_path):
    out = tmp_path / "audit.zip"
    clinic("audit", "export", "--out", str(out))
    other = tmp_path / "other"
    (tmp_path / "other.pub").write_text(audit_keys.public_hex(
        audit_keys.load_or_create_signing_key(other)))
    r = clinic("audit", "verify", "--bundle", str(out), "--key", str(tmp_path / "other.pub"))
    assert r.returncode == 1 and "wrong_key" in r.stderr


def test_an_edited_line_in_a_bundle_is_named_with_its_seq(home, tmp_path):
    out = tmp_path / "audit.zip"
    clinic("audit", "export", "--out", str(out))

    def edit(files):
        lines = files["events.jsonl"].split(b"\n")
        edited = lines[6].replace(b'\\"fund\\":100', b'\\"fund\\":900')
        assert edited != lines[6]
        lines[6] = edited
        return {**files, "events.jsonl": b"\n".join(lines)}
    bad = _rezip(out, tmp_path / "bad.zip", edit)
    r = clinic("audit", "verify", "--bundle", str(bad))
    assert r.returncode == 1
    assert "seq 7 (modified)" in r.stderr and "第 7 条" in r.stdout


def test_a_bundle_cut_short_is_named_truncated_even_without_its_checkpoints(home, tmp_path):
    out = tmp_path / "audit.zip"
    clinic("audit", "export", "--out", str(out))

    def cut(files):
        lines = files["events.jsonl"].split(b"\n")
        return {**files, "events.jsonl": b"\n".join(lines[:12]) + b"\n",
                "checkpoints.jsonl": b""}
    r = clinic("audit", "verify", "--bundle", str(_rezip(out, tmp_path / "cut.zip", cut)))
    assert r.returncode == 1 and "seq 13 (truncated)" in r.stderr   # the signed manifest says 16


def test_the_clinic_database_with_events_after_its_last_checkpoint_is_unproven_exit_3(home):
    engine = open_database(home.db_path)
    AuditLog(engine, Actor(home.fixmedins_code, "counter-1", "D0001", "worker")).append("late")
    engine.dispose()
    r = clinic("audit", "verify")
    assert r.returncode == 3, r.stdout + r.stderr
    assert "完整性未证实" in r.stdout and "completeness unproven" in r.stderr


def test_an_unreadable_bundle_exits_4(tmp_path):
    (tmp_path / "x.zip").write_bytes(b"not a zip")
    assert clinic("audit", "verify", "--bundle", str(tmp_path / "x.zip")).returncode == 4
