"""The fault matrix: every step of a visit × every fault, against the real simulator process with
its fault injection and the real client process, which may be SIGKILLed at the step.

After each run the client restarts and recovers; then: at most one committed settlement per visit
at the insurer, local state equals the insurer's, no visit left unknown, every fen accounted for.
At the end the day's close balances. The observed matrix must equal the one in
docs/exactly-once.md, so the documentation cannot drift from the behaviour.
"""
from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import httpx
import pytest
from e2e_helpers import clinic

from clinic.services import start_simulator
from settlement.mock_network import registry
from settlement.mock_network.faults import CONTROL_PATH

STEPS = ("1101", "2201", "2203", "2204", "2206", "2207")
FAULTS = {
    "request lost": ("drop_before_commit", 0, 1),
    "answer lost after commit": ("commit_then_drop", 0, 1),
    "HTTP 500": ("http500", 0, 1),
    "malformed body": ("malformed", 0, 1),
    "slow past timeout": ("latency", 2.5, 1),
    "insurer failing on every try": ("http500", 0, 3),
    "killed before send": "after_intent",
    "killed after answer": "after_answer",
    "duplicate delivery": "replay",
}
DOC = Path(__file__).resolve().parents[2] / "docs" / "exactly-once.md"
AMOUNTS = ("medfee_sumamt", "fund_pay_sumamt", "acct_pay", "psn_cash_pay")


@pytest.fixture(scope="module")
def insurer(tmp_path_factory):
    work = tmp_path_factory.mktemp("matrix")
    sim = start_simulator(work / "insurer.db", extra=["--control"])
    yield sim.address, work / "insurer.db"
    sim.stop()


def _people():
    """Distinct insured villagers in normal state, one per scenario (no repeat-prescribing noise)."""
    return iter([v for v in registry.build_registry()
                 if v.insu_state == "1" and v.card_expiry_date.year > 2026 and v.insutype == "390"])


def _set_fault(network: str, infno: str, kind: str, seconds: float, count: int = 1) -> None:
    with httpx.Client(trust_env=False) as http:
        http.delete(network + CONTROL_PATH).raise_for_status()
        if kind:
            http.post(network + CONTROL_PATH, json={"infno": infno, "kind": kind, "count": count,
                                                    "seconds": seconds}).raise_for_status()


def _replay(network: str, home: Path, infno: str) -> bool:
    """Deliver the journaled message of `infno` once more; the insurer must answer it identically."""
    from dataclasses import replace

    from auth_helpers import admin_session

    from clinic.config import load_settings
    from clinic.counter import Counter
    settings = load_settings(home=home)
    counter = Counter(replace(settings, network_url=network), admin_session(settings))
    try:
        con = sqlite3.connect(home / "clinic.db")
        msgid = con.execute("SELECT msgid FROM journal_message WHERE infno=? ORDER BY msgid DESC",
                            (infno,)).fetchone()[0]
        first = counter.journal.entry(msgid)["answer"]
        again = counter.client.send(infno, msgid, counter.journal.entry(msgid)["body"])
        return again.raw == first
    finally:
        counter.close()


def _scenario(network, insurer_db, home, person, step, fault) -> str:
    spec = FAULTS[fault]
    env = {"CLINIC_NETWORK": network, "CLINIC_TIMEOUT": "1"}
    if isinstance(spec, tuple):
        _set_fault(network, step, *spec)
    else:
        _set_fault(network, "", "", 0)
        if spec != "replay":
            env["CLINIC_CRASH_AT"] = f"{step}:{spec}"
    con = sqlite3.connect(home / "clinic.db") if (home / "clinic.db").exists() else None
    before = {r[0] for r in con.execute("SELECT id FROM visit")} if con else set()
    proc = clinic(home, "settle", "--id-number", person.certno, "--rx", "xbdp:1:7",
                  "--diagnosis", "I10", "--json", env=env)
    _set_fault(network, "", "", 0)
    first = {0: "settled", -9: "killed", 5: "unknown", 3: "refused"}.get(proc.returncode,
                                                                      f"exit {proc.returncode}")
    rec = clinic(home, "recover", "--json", env={"CLINIC_NETWORK": network})
    assert rec.returncode == 0 and json.loads(rec.stdout)["unresolved"] == [], rec.stdout
    con = sqlite3.connect(home / "clinic.db")
    new = [r for r in con.execute("SELECT id, state, mdtrt_id, setl_msgid, split_json FROM visit")
           if r[0] not in before]
    assert len(new) <= 1
    if not new:
        outcome = f"{first}; no visit, nothing moved"
    else:
        vid, state, mdtrt_id, msgid, split_json = new[0]
        ins = sqlite3.connect(insurer_db)
        committed = ins.execute(
            "SELECT medins_setl_id, " + ", ".join(AMOUNTS) + " FROM settlement"
            " WHERE mdtrt_id=? AND kind='settle' AND status='normal'", (mdtrt_id,)).fetchall()
        assert len(committed) <= 1, "the insurer holds two settlements for one visit"
        if state == "settled":
            split = json.loads(split_json)
            assert committed == [(msgid, *(split[a] for a in AMOUNTS))], "books differ from insurer"
        else:
            assert state in ("failed", "reversed", "cancelled") and committed == [], (state, committed)
            registered = ins.execute("SELECT status FROM visit WHERE mdtrt_id=?", (mdtrt_id,)).fetchone()
            if state == "cancelled" and mdtrt_id:
                assert registered == ("cancelled",), "the insurer still holds the withdrawn visit"
        sends = con.execute("SELECT max(attempts) FROM journal_message WHERE visit_id=? OR "
                            "(infno='1101' AND msgid=(SELECT max(msgid) FROM journal_message "
                            "WHERE infno='1101'))", (vid,)).fetchone()[0]
        outcome = f"{first} → {state}" if first != state else state
        if first == "settled" and sends > 1:
            outcome += f" ({sends} sends)"
    if spec == "replay" and first == "settled":
        assert _replay(network, home, step)
        outcome += "; replay answered identically"
    return outcome


def _doc_matrix() -> dict[tuple[str, str], str]:
    text = DOC.read_text(encoding="utf-8")
    table = text.split("<!-- matrix -->")[1]
    rows = [ln for ln in table.splitlines() if ln.startswith("| ")]
    header = [c.strip() for c in rows[0].strip("|").split("|")][1:]
    out = {}
    for ln in rows[1:]:  # header, then one row per step (the --- line does not start with "| ")
        cells = [c.strip() for c in ln.strip("|").split("|")]
        for fault, cell in zip(header, cells[1:]):
            out[(cells[0], fault)] = cell
    return out


def render(matrix: dict[tuple[str, str], str]) -> str:
    faults = list(FAULTS)
    lines = ["| step | " + " | ".join(faults) + " |", "|---" * (len(faults) + 1) + "|"]
    for step in STEPS:
        lines.append(f"| {step} | " + " | ".join(matrix[(step, f)] for f in faults) + " |")
    return "\n".join(lines)


@pytest.mark.timeout(900)  # 54 scenarios, each a few real `clinic` processes that log in
def test_fault_matrix_every_step_every_fault_exactly_once(insurer, tmp_path, capsys):
    network, insurer_db = insurer
    home = tmp_path / "clinic"
    people = _people()
    matrix = {}
    for step in STEPS:
        for fault in FAULTS:
            matrix[(step, fault)] = _scenario(network, insurer_db, home, next(people), step, fault)
    # killed after the settlement was recorded, before the receipt was written
    env = {"CLINIC_NETWORK": network, "CLINIC_CRASH_AT": "after_settled"}
    person = next(people)
    proc = clinic(home, "settle", "--id-number", person.certno, "--rx", "xbdp:1:7", "--json", env=env)
    assert proc.returncode == -9
    rec = json.loads(clinic(home, "recover", "--json", env={"CLINIC_NETWORK": network}).stdout)
    assert [n["after"] for n in rec["notes"]] == ["settled"] and rec["unresolved"] == []

    table = render(matrix)
    with capsys.disabled():
        print("\n\nFault matrix (step × fault → outcome after restart and recovery):\n" + table)
    documented = _doc_matrix()
    assert {k: v for k, v in documented.items()} == matrix, \
        "docs/exactly-once.md disagrees with the observed matrix; observed:\n" + table

    # every fen accounted for: the day closes balanced against the insurer
    close = clinic(home, "day", "close", "--json", env={"CLINIC_NETWORK": network})
    report = json.loads(close.stdout)
    assert close.returncode == 0 and report["balanced"], report["differences"]
    assert re.search(r"[0-9]", json.dumps(report["totals"]))
