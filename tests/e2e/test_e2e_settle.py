"""End to end: the real simulator and virtual reader processes, `clinic settle` as a real process."""
from __future__ import annotations

import json
import shutil
import socket
import sqlite3
import subprocess
from pathlib import Path

from e2e_helpers import clinic

from settlement.mock_network import registry

EXPECTED_CHAIN = ["9001", "1101", "2201", "2203", "2204", "2206", "2207"]


def _settle(home, network, reader, rx, *extra):
    return clinic(home, "settle", "--reader", reader, "--rx", rx, "--network", network,
                  "--json", *extra)


def test_a_card_visit_settles_end_to_end(services, tmp_path):
    network, reader, insurer_db = services
    home = tmp_path / "clinic"
    proc = _settle(home, network, reader, "xbdp:1:7,阿司匹林肠溶片:1:7", "--diagnosis", "I10")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    out = json.loads(proc.stdout)
    villager = registry.default_villager()
    assert out["status"] == "settled" and out["psn_name"] == villager.psn_name
    assert len(out["msgid"]) == 30 and out["setl_id"]
    assert {v["outcome"] for v in out["verdicts"]} == {"pass"}

    # protocol.md's three identities, in integer fen
    a = out["amounts_fen"]
    assert a["medfee_sumamt"] == (a["fulamt_ownpay_amt"] + a["overlmt_selfpay"]
                                  + a["preselfpay_amt"] + a["inscp_scp_amt"])
    assert a["medfee_sumamt"] == a["fund_pay_sumamt"] + a["psn_part_amt"] + a["hosp_part_amt"]
    assert a["psn_part_amt"] == a["acct_pay"] + a["psn_cash_pay"]
    assert a["medfee_sumamt"] > 0
    assert out["medfee_sumamt"] == f"{a['medfee_sumamt'] // 100}.{a['medfee_sumamt'] % 100:02d}"

    # the journal holds every message of the visit, answered, the settle's msgid among them
    con = sqlite3.connect(home / "clinic.db")
    rows = con.execute("SELECT msgid, infno, state FROM journal_message ORDER BY msgid").fetchall()
    assert [r[1] for r in rows] == EXPECTED_CHAIN
    assert all(r[2] == "answered" for r in rows)
    assert (out["msgid"], "2207", "answered") in rows
    visit = con.execute("SELECT state, setl_id, setl_msgid FROM visit").fetchall()
    assert visit == [("settled", out["setl_id"], out["msgid"])]

    # the insurer committed exactly one settlement, found again by our msgid
    ins = sqlite3.connect(insurer_db)
    tables = {r[0] for r in ins.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    setl_table = next(t for t in tables if "settle" in t.lower() or "setl" in t.lower())
    cols = [c[1] for c in ins.execute(f"PRAGMA table_info({setl_table})")]
    assert "medins_setl_id" in cols
    assert ins.execute(f"SELECT count(*) FROM {setl_table} WHERE medins_setl_id=?",
                       (out["msgid"],)).fetchone()[0] == 1

    # the audit chain verifies and covers the visit
    verify = clinic(home, "audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    actions = [r[0] for r in con.execute("SELECT action FROM audit_event ORDER BY seq")]
    for action in ("card_read", "sign_in", "person_lookup", "prescription", "visit_register",
                   "fees_upload", "presettle", "settle", "receipt_print"):
        assert action in actions, action

    # the receipt reads correctly and shows only a masked ID number
    receipt = Path(out["receipt"])
    assert receipt.exists() and receipt.parent == home / "receipts"
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", "-layout", str(receipt), "-"], capture_output=True,
                              text=True).stdout
        from clinic.crypto import mask_name
        assert mask_name(villager.psn_name) in text and out["setl_id"] in text
        assert villager.psn_name not in text
        assert villager.certno[:6] + "********" + villager.certno[-4:] in text
        assert villager.certno not in text

    # no patient identifier lies in clear in the database or the log
    for path in (home / "clinic.db", home / "logs" / "clinic.log"):
        data = path.read_bytes()
        for secret in (villager.certno, villager.psn_name, villager.card_no):
            assert secret.encode("utf-8") not in data, (path.name, "leaks an identifier")


def test_blocked_prescription_exits_2_and_moves_no_money(services, tmp_path):
    network, reader, _ = services
    home = tmp_path / "clinic"
    proc = _settle(home, network, reader, "xbdp:2:14", "--diagnosis", "J06.9")
    assert proc.returncode == 2, proc.stderr + proc.stdout
    out = json.loads(proc.stdout)
    assert out["status"] == "blocked" and out["setl_id"] is None
    assert any(v["rule_id"] == "R003" and v["outcome"] == "block" for v in out["verdicts"])
    con = sqlite3.connect(home / "clinic.db")
    assert con.execute("SELECT count(*) FROM journal_message WHERE infno='2207'").fetchone()[0] == 0


def test_reader_problem_exits_4_with_a_chinese_message(services, tmp_path):
    network, _, _ = services
    proc = _settle(tmp_path / "clinic", network, str(tmp_path / "no-such-tty"), "xbdp:1")
    assert proc.returncode == 4, proc.stderr + proc.stdout
    out = json.loads(proc.stdout)
    assert out["status"] == "card_error" and any("\u4e00" <= ch <= "\u9fff" for ch in out["message"])


def test_unreachable_network_exits_5_after_journaling(services, tmp_path):
    _, reader, _ = services
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    home = tmp_path / "clinic"
    proc = _settle(home, f"http://127.0.0.1:{port}", reader, "xbdp:1")
    assert proc.returncode == 5, proc.stderr + proc.stdout
    assert json.loads(proc.stdout)["status"] == "unreachable"
    con = sqlite3.connect(home / "clinic.db")
    assert con.execute("SELECT infno, state FROM journal_message").fetchall() == [("9001", "unreachable")]


def test_unknown_person_is_refused_by_the_insurer_exit_3(services, tmp_path):
    network, _, _ = services
    from cardreader.idnumber import check_digit
    first17 = "31011619000101999"  # a valid shape nobody in the registry has
    proc = clinic(tmp_path / "clinic", "settle", "--id-number", first17 + check_digit(first17),
                  "--rx", "xbdp:1", "--network", network, "--json")
    assert proc.returncode == 3, proc.stderr + proc.stdout
    assert json.loads(proc.stdout)["status"] == "refused"


def test_training_settles_only_in_the_training_home(services, tmp_path):
    network, reader, _ = services
    home = tmp_path / "clinic"
    proc = clinic(home, "--training", "settle", "--reader", reader, "--rx", "xbdp:1:7",
                  "--network", network, "--json")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    out = json.loads(proc.stdout)
    assert not home.exists(), "training wrote into the real data directory"
    training = Path(str(home) + "-training")
    assert Path(out["receipt"]).parent == training / "receipts"
    assert out["msgid"].startswith("T")
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", out["receipt"], "-"], capture_output=True, text=True).stdout
        assert "培训" in text


def test_training_refuses_a_non_simulator_url_before_connecting(tmp_path):
    home = tmp_path / "clinic"
    proc = clinic(home, "--training", "settle", "--id-number", "11010519491231002X",
                  "--rx", "xbdp:1", "--network", "http://192.0.2.10:8080", "--json")
    assert proc.returncode == 6
    assert "培训模式" in proc.stderr
    assert not home.exists()
    training_db = Path(str(home) + "-training") / "clinic.db"
    if training_db.exists():
        con = sqlite3.connect(training_db)
        assert con.execute("SELECT count(*) FROM journal_message").fetchone()[0] == 0
