"""Exactly-once across crashes: the client process SIGKILLs itself at each step of a settlement,
restarts, recovers, and the insurer and the books agree, with one settlement at most."""
from __future__ import annotations

import json
import signal
import sqlite3

import pytest

from e2e_helpers import clinic


def _insurer_settlements(insurer_db, msgid):
    ins = sqlite3.connect(insurer_db)
    return ins.execute("SELECT count(*) FROM settlement WHERE medins_setl_id=?", (msgid,)).fetchone()[0]


def _visits(home):
    con = sqlite3.connect(home / "clinic.db")
    return con.execute("SELECT id, state, setl_msgid, receipt_path FROM visit").fetchall()


def _settle_msgid(home):
    con = sqlite3.connect(home / "clinic.db")
    rows = con.execute("SELECT msgid FROM journal_message WHERE infno='2207'").fetchall()
    return rows[0][0] if rows else None


@pytest.mark.parametrize("point,committed_at_insurer", [
    ("2207:after_intent", False),   # journaled, killed before the first byte went out
    ("2207:after_answer", True),    # insurer committed, answer received, killed before recording it
    ("after_settled", True),        # recorded as settled, killed before the receipt was written
])
def test_a_settlement_killed_at_any_step_is_finished_exactly_once_by_recovery(
        services, tmp_path, point, committed_at_insurer):
    network, reader, insurer_db = services
    home = tmp_path / "clinic"
    env = {"CLINIC_CRASH_AT": point}
    proc = clinic(home, "settle", "--reader", reader, "--rx", "xbdp:1:7", "--network", network,
                  "--json", env=env)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    msgid = _settle_msgid(home)
    assert msgid, "the 2207 must be journaled before anything can happen to it"
    assert _insurer_settlements(insurer_db, msgid) == (1 if committed_at_insurer else 0)

    rec = clinic(home, "recover", "--json", env={"CLINIC_NETWORK": network})
    assert rec.returncode == 0, rec.stderr + rec.stdout
    out = json.loads(rec.stdout)
    assert out["unresolved"] == []
    assert any(n["after"] == "settled" for n in out["notes"]), out
    # exactly one settlement at the insurer, found by the journaled msgid, and the books agree
    assert _insurer_settlements(insurer_db, msgid) == 1
    [(visit_id, state, setl_msgid, receipt)] = _visits(home)
    assert (state, setl_msgid) == ("settled", msgid) and receipt
    assert clinic(home, "audit", "verify").returncode == 0


def test_recovery_without_the_insurer_leaves_the_visit_unknown_until_the_insurer_answers(
        services, tmp_path):
    network, reader, insurer_db = services
    home = tmp_path / "clinic"
    proc = clinic(home, "settle", "--reader", reader, "--rx", "xbdp:1:7", "--network", network,
                  "--json", env={"CLINIC_CRASH_AT": "2207:after_intent"})
    assert proc.returncode == -signal.SIGKILL
    rec = clinic(home, "recover", "--json", env={"CLINIC_NETWORK": "http://127.0.0.1:9"})
    assert rec.returncode == 5
    assert len(json.loads(rec.stdout)["unresolved"]) == 1
    [(visit_id, state, _, receipt)] = _visits(home)
    assert state == "unknown" and receipt is None
    again = clinic(home, "recover", "--json", env={"CLINIC_NETWORK": network})
    assert again.returncode == 0 and json.loads(again.stdout)["unresolved"] == []
    assert _visits(home)[0][1] == "settled"
