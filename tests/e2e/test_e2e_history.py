"""A history checker in the style of Jepsen's bank test.

A randomised run of many visits, revocations, abandoned visits and injected faults (lost
requests, lost answers, HTTP 500, slow answers) against the real simulator process; the client is
"restarted" (a fresh Counter on the same files) and recovers at random points. Afterwards money is
conserved on both sides: every settlement the clinic holds is the insurer's to the fen, every
personal account moved by exactly what its settlements took, and nothing is left unknown.
"""
from __future__ import annotations

import json
import random
import sqlite3
from dataclasses import replace

import httpx
import pytest
from auth_helpers import admin_session

from clinic.config import load_settings
from clinic.counter import Counter
from clinic.errors import CounterError
from clinic.recovery import recover
from clinic.revocation import revoke
from clinic.services import start_simulator
from settlement.mock_network import registry
from settlement.mock_network.faults import CONTROL_PATH
from settlement.values import Credential

OPS = 45
FAULTS = ("drop_before_commit", "commit_then_drop", "http500", "latency")
STEPS = ("1101", "2201", "2204", "2206", "2207", "2208")
DRUGS = ("xbdp", "阿司匹林肠溶片", "盐酸二甲双胍片", "阿莫西林胶囊", "布洛芬片")


@pytest.fixture(scope="module")
def insurer(tmp_path_factory):
    work = tmp_path_factory.mktemp("history")
    sim = start_simulator(work / "insurer.db", extra=["--control"])
    yield sim.address, work / "insurer.db"
    sim.stop()


def _fault(network, rng):
    with httpx.Client(trust_env=False) as http:
        http.delete(network + CONTROL_PATH)
        if rng.random() < 0.35:
            kind = rng.choice(FAULTS)
            http.post(network + CONTROL_PATH, json={"infno": rng.choice(STEPS), "kind": kind,
                                                    "count": rng.choice((1, 1, 3)),
                                                    "seconds": 1.2 if kind == "latency" else 0})


def test_money_is_conserved_across_a_random_history_of_visits_revocations_and_faults(
        insurer, tmp_path):
    network, insurer_db = insurer
    rng = random.Random(20261130)
    people = [v for v in registry.build_registry() if v.insu_state == "1"
              and v.card_expiry_date.year > 2026]
    employees = [v for v in people if v.insutype == "310" and v.balc_fen > 0][:6]
    residents = [v for v in people if v.insutype == "390"][:6]
    cast = employees + residents
    settings = replace(load_settings(home=tmp_path / "clinic"), network_url=network,
                       timeout_seconds=0.6)
    session = admin_session(settings)
    counter = Counter(settings, session)
    reasons: list[str] = []
    outcomes = {"settled": 0, "revoked": 0, "abandoned": 0, "refused_or_unknown": 0, "restarts": 0}
    try:
        for _ in range(OPS):
            _fault(network, rng)
            op = rng.random()
            person = rng.choice(cast)
            cred = Credential("02", person.certno, certno=person.certno)
            try:
                if op < 0.6:
                    rx = [(d, 1, 7) for d in rng.sample(DRUGS, rng.randint(1, 3))]
                    r = counter.run_visit(cred, rx, diagnosis="I10",
                                          overrides={"R006": "随机历史", "R005": "随机历史",
                                                     "R008": "随机历史", "R009": "随机历史"})
                    outcomes["settled" if r.status == "settled" else "refused_or_unknown"] += 1
                    if r.status != "settled":
                        reasons.append(r.message[:60])
                elif op < 0.75:
                    with counter.engine.connect() as conn:
                        ids = [r[0] for r in conn.exec_driver_sql(
                            "SELECT id FROM visit WHERE state='settled'")]
                    if ids:
                        revoke(counter, rng.choice(ids), "随机撤销")
                        outcomes["revoked"] += 1
                elif op < 0.85:
                    # Crash in the middle: the visit is left registered/pre-settled.
                    person_ = counter.lookup(cred)
                    items = counter.resolve_items([("xbdp", 1, 3)])
                    vid = counter.open_visit(person_, cred, items, [], "I10", {})
                    counter.upload_fees(vid)
                    outcomes["abandoned"] += 1
                else:
                    counter.close()  # restart: a fresh process would do exactly this
                    counter = Counter(settings, session)
                    recover(counter)
                    outcomes["restarts"] += 1
            except CounterError as exc:
                outcomes["refused_or_unknown"] += 1
                reasons.append(exc.message[:40])
        with httpx.Client(trust_env=False) as http:
            http.delete(network + CONTROL_PATH)
        counter.close()
        counter = Counter(settings, session)
        recover(counter)
        assert counter.unresolved_visits() == []
    finally:
        counter.close()

    assert outcomes["settled"] >= 10 and outcomes["revoked"] >= 2, (outcomes, reasons)
    con = sqlite3.connect(tmp_path / "clinic" / "clinic.db")
    ins = sqlite3.connect(insurer_db)
    states = dict(con.execute("SELECT state, count(*) FROM visit GROUP BY state").fetchall())
    assert set(states) <= {"settled", "revoked", "failed", "cancelled", "reversed"}, states

    # 1. every local settlement is the insurer's, to the fen, and vice versa
    local = {}
    for setl_id, state, split_json in con.execute(
            "SELECT setl_id, state, split_json FROM visit WHERE state IN ('settled','revoked')"):
        s = json.loads(split_json)
        local[setl_id] = (state, s["medfee_sumamt"], s["fund_pay_sumamt"], s["acct_pay"],
                          s["psn_cash_pay"])
    fixmedins = settings.fixmedins_code
    remote = {r[0]: ({"normal": "settled", "revoked": "revoked"}.get(r[1], r[1]), *r[2:])
              for r in ins.execute(
                  "SELECT setl_id, status, medfee_sumamt, fund_pay_sumamt, acct_pay, psn_cash_pay"
                  " FROM settlement WHERE kind='settle' AND status != 'reversed'"
                  " AND fixmedins_code=?", (fixmedins,))}
    assert local == remote

    # 2. each settlement splits its total exactly: fund + account + cash (+ institution)
    for setl_id, (_, medfee, fund, acct, cash) in local.items():
        hosp = ins.execute("SELECT hosp_part_amt FROM settlement WHERE setl_id=?",
                           (setl_id,)).fetchone()[0]
        assert medfee == fund + acct + cash + hosp

    # 3. every personal account moved by exactly what its live settlements took
    for v in employees:
        taken = ins.execute(
            "SELECT coalesce(sum(acct_pay), 0) FROM settlement WHERE psn_no=? AND kind='settle'"
            " AND status='normal'", (v.psn_no,)).fetchone()[0]
        balance = ins.execute("SELECT balc_fen FROM account WHERE psn_no=?", (v.psn_no,)).fetchone()[0]
        assert balance == v.balc_fen - taken >= 0, v.psn_no

    # 4. the insurer holds no settlement the clinic does not know of
    assert set(remote) == set(local)
