"""Revocation (2208) and reversal (2601) through the CLI against the real simulator."""
from __future__ import annotations

import json
import signal
import sqlite3

from e2e_helpers import clinic


def _settle(home, network, reader, **kw):
    proc = clinic(home, "settle", "--reader", reader, "--rx", "xbdp:1:7", "--network", network,
                  "--json", **kw)
    return proc


def _visit(home):
    con = sqlite3.connect(home / "clinic.db")
    return con.execute("SELECT id, state, setl_id, revoke_setl_id, revoke_split_json, "
                       "revoke_reason_sealed FROM visit").fetchone()


def test_revoking_a_settlement_gives_a_new_setl_id_with_negated_amounts(services, tmp_path):
    network, reader, insurer_db = services
    home = tmp_path / "clinic"
    out = json.loads(_settle(home, network, reader).stdout)
    visit_id = _visit(home)[0]
    env = {"CLINIC_NETWORK": network}
    proc = clinic(home, "visit", "revoke", visit_id, "--reason", "药品开错", env=env)
    assert proc.returncode == 0, proc.stderr
    _, state, setl_id, revoke_setl_id, split_json, reason = _visit(home)
    assert state == "revoked"
    assert "药品开错".encode() not in reason  # the worker's free text is sealed, not kept in clear
    con = sqlite3.connect(home / "clinic.db")
    details = con.execute("SELECT details FROM audit_event WHERE action='revoke' AND outcome='ok'"
                          ).fetchone()[0]
    assert json.loads(details)["reason"] == "药品开错"  # the supervisor still reads why
    assert revoke_setl_id and revoke_setl_id != setl_id == out["setl_id"]
    neg = json.loads(split_json)
    assert neg["medfee_sumamt"] == -out["amounts_fen"]["medfee_sumamt"]
    assert neg["psn_cash_pay"] == -out["amounts_fen"]["psn_cash_pay"]
    ins = sqlite3.connect(insurer_db)
    assert ins.execute("SELECT status FROM settlement WHERE setl_id=?", (setl_id,)).fetchone() == ("revoked",)
    # a second revocation is refused locally, before anything is sent
    again = clinic(home, "visit", "revoke", visit_id, "--reason", "再次", env=env)
    assert again.returncode == 6 and "不能撤销" in again.stderr
    con = sqlite3.connect(home / "clinic.db")
    assert con.execute("SELECT count(*) FROM journal_message WHERE infno='2208'").fetchone()[0] == 1
    actions = [r[0] for r in con.execute("SELECT action FROM audit_event")]
    assert "revoke" in actions
    slip = proc.stdout.split("撤销单：")[1].strip()
    import shutil
    import subprocess
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", "-layout", slip, "-"], capture_output=True, text=True).stdout
        assert "医保结算撤销单" in text and setl_id in text and revoke_setl_id in text


def test_revocation_needs_a_reason(services, tmp_path):
    network, reader, _ = services
    home = tmp_path / "clinic"
    _settle(home, network, reader)
    proc = clinic(home, "visit", "revoke", _visit(home)[0], "--reason", "  ",
                  env={"CLINIC_NETWORK": network})
    assert proc.returncode == 1 and "原因" in proc.stderr
    assert _visit(home)[1] == "settled"


def test_an_unknown_settlement_is_reversed_and_the_insurer_keeps_nothing(services, tmp_path):
    network, reader, insurer_db = services
    home = tmp_path / "clinic"
    # killed after the insurer committed, before the answer was recorded
    proc = _settle(home, network, reader, env={"CLINIC_CRASH_AT": "2207:after_answer"})
    assert proc.returncode == -signal.SIGKILL
    con = sqlite3.connect(home / "clinic.db")
    visit_id = _visit(home)[0]
    con.execute("UPDATE visit SET state='unknown' WHERE id=?", (visit_id,))  # as a failed recovery leaves it
    con.commit()
    rev = clinic(home, "visit", "reverse", visit_id, env={"CLINIC_NETWORK": network})
    assert rev.returncode == 0, rev.stderr
    assert _visit(home)[1] == "reversed"
    msgid = con.execute("SELECT msgid FROM journal_message WHERE infno='2207'").fetchone()[0]
    ins = sqlite3.connect(insurer_db)
    assert ins.execute("SELECT status FROM settlement WHERE medins_setl_id=?", (msgid,)).fetchone() == ("reversed",)
    # and nothing is left to recover
    rec = clinic(home, "recover", "--json", env={"CLINIC_NETWORK": network})
    assert rec.returncode == 0 and json.loads(rec.stdout)["unresolved"] == []
