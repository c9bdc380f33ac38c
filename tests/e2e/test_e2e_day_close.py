"""The day's close against the real simulator: 3201 totals, 3202 details, cash, sign-out."""
from __future__ import annotations

import json
import sqlite3

from e2e_helpers import clinic


def _settle(home, network, reader, rx="xbdp:1:7"):
    proc = clinic(home, "settle", "--reader", reader, "--rx", rx, "--network", network, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_a_day_with_settlements_a_revocation_and_self_pay_balances_to_the_fen(services, tmp_path):
    network, reader, _ = services
    home = tmp_path / "clinic"
    env = {"CLINIC_NETWORK": network}
    a = _settle(home, network, reader)
    b = _settle(home, network, reader, "阿司匹林肠溶片:1:7")  # same drug again would be a repeat
    con = sqlite3.connect(home / "clinic.db")
    vid_b = con.execute("SELECT id FROM visit WHERE setl_id=?", (b["setl_id"],)).fetchone()[0]
    assert clinic(home, "visit", "revoke", vid_b, "--reason", "开错药", env=env).returncode == 0
    sp = clinic(home, "self-pay", "--rx", "阿司匹林肠溶片:1", env=env)
    assert sp.returncode == 0, sp.stderr
    self_pay_cash = con.execute("SELECT split_json FROM visit WHERE self_pay=1").fetchone()[0]
    expected_cash = a["amounts_fen"]["psn_cash_pay"] + json.loads(self_pay_cash)["psn_cash_pay"]

    counted = f"{expected_cash // 100}.{expected_cash % 100:02d}"
    proc = clinic(home, "day", "close", "--cash-counted", counted, "--json", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["balanced"] and report["differences"] == []
    assert report["cash_expected"] == expected_cash
    insutype = next(t for t, v in report["totals"].items() if v["count"])
    assert report["totals"][insutype]["count"] == 1  # the revoked pair cancels out
    assert report["insurer"][insutype][0] == "0"
    infnos = [r[0] for r in con.execute("SELECT infno FROM journal_message ORDER BY msgid")]
    assert infnos[-1] == "9002" and {"3201", "9101", "3202", "9102"} <= set(infnos)
    assert con.execute("SELECT balanced FROM day_close").fetchall() == [(1,)]


def test_a_cash_shortfall_is_listed_with_what_to_do_and_exits_nonzero(services, tmp_path):
    network, reader, _ = services
    home = tmp_path / "clinic"
    a = _settle(home, network, reader)
    short = a["amounts_fen"]["psn_cash_pay"] - 100
    proc = clinic(home, "day", "close", "--cash-counted", f"{short // 100}.{short % 100:02d}",
                  env={"CLINIC_NETWORK": network})
    assert proc.returncode == 1
    assert "现金少 1.00 元" in proc.stdout and "处理：" in proc.stdout


def test_a_settlement_the_clinic_lost_shows_up_line_by_line(services, tmp_path):
    network, reader, _ = services
    home = tmp_path / "clinic"
    a = _settle(home, network, reader)
    # The books lose the settlement (as if restored from an old backup): the insurer still has it.
    con = sqlite3.connect(home / "clinic.db")
    con.execute("UPDATE visit SET state='failed' WHERE setl_id=?", (a["setl_id"],))
    con.commit()
    proc = clinic(home, "day", "close", "--json", env={"CLINIC_NETWORK": network})
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    kinds = {d["kind"] for d in report["differences"]}
    assert kinds == {"totals", "detail"}
    assert any(a["setl_id"] in d["message"] and "机构无此结算" in d["message"]
               for d in report["differences"])
