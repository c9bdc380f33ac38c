"""Many concurrent settlements of one person, through real HTTP against the simulator as a
real process, on SQLite and on PostgreSQL: balances and yearly totals stay exact."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from settlement import wire
from settlement.mock_network.db import Account, Settlement, YearTotal, make_engine
from settlement.mock_network.registry import REFERENCE_DATE, build_registry, states
from settlement.money import to_fen

from .conftest import Client, SimProcess, new_visit, pg_database, q2206, q2207

VISITS = 20
# An employee whose account runs dry part-way: some visits take from it, the last ones cannot.
EMPLOYEE = next(v for v in build_registry() if v.insutype == "310" and 20_000 < v.balc_fen < 40_000
                and states(v, REFERENCE_DATE) == ("normal",))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'conc.db'}"
    else:
        with pg_database() as url:
            yield url


def _identities(info: dict) -> None:
    f = {k: to_fen(v) for k, v in info.items() if k in (
        "medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt",
        "inscp_scp_amt", "fund_pay_sumamt", "psn_part_amt", "acct_pay", "psn_cash_pay",
        "hosp_part_amt", "balc")}
    assert f["medfee_sumamt"] == f["fund_pay_sumamt"] + f["psn_part_amt"] + f["hosp_part_amt"]
    assert f["psn_part_amt"] == f["acct_pay"] + f["psn_cash_pay"]
    assert f["medfee_sumamt"] == (f["fulamt_ownpay_amt"] + f["overlmt_selfpay"]
                                  + f["preselfpay_amt"] + f["inscp_scp_amt"])
    assert f["balc"] >= 0 and f["acct_pay"] >= 0


@pytest.mark.parametrize("workers", [1, 2])
def test_sim_concurrent_settlements_of_one_person_keep_balance_and_totals_exact(db_url, workers):
    # workers=2: two simulator processes on one socket; only the database keeps them in step.
    sim = SimProcess(db_url, "--workers", str(workers)).start()
    try:
        first = Client(sim.url)
        sign_no = first.sign_in()
        start = to_fen(first.ok("1101", {"data": {
            "mdtrt_cert_type": "02", "mdtrt_cert_no": EMPLOYEE.certno, "psn_cert_type": "01",
            "certno": EMPLOYEE.certno, "begntime": "2026-11-30 09:00:00"}})["insuinfo"][0]["balc"])
        assert start == EMPLOYEE.balc_fen
        barrier = threading.Barrier(VISITS)

        def one_visit(i: int) -> tuple[dict, bytes, bytes]:
            c = Client(sim.url)
            c.sign_no = sign_no
            try:
                psn, mid, total = new_visit(c, EMPLOYEE)
                pre = q2206(psn, mid, "310", total)
                s = c.ok("2206", pre)["setlinfo"]
                body = c.body("2207", q2207(pre, s))
                barrier.wait(timeout=30)  # all 2207s at once
                # The same 2207 twice at the same moment: one effect, the same answer.
                with ThreadPoolExecutor(2) as dup:
                    a, b = dup.map(c.post, [body, body])
                return answer(a.status_code, a.content), a.content, b.content
            finally:
                c.close()

        with ThreadPoolExecutor(VISITS) as pool:
            results = list(pool.map(one_visit, range(VISITS)))
        for out, a, b in results:
            assert a == b  # byte for byte
            assert out["infcode"] == 0, out["err_msg"]
        infos = [out["output"]["setlinfo"] for out, _, _ in results]
        for info in infos:
            _identities(info)
        assert len({i["setl_id"] for i in infos}) == VISITS
        debits = sum(to_fen(i["acct_pay"]) for i in infos)
        after = to_fen(first.ok("1101", {"data": {
            "mdtrt_cert_type": "02", "mdtrt_cert_no": EMPLOYEE.certno, "psn_cert_type": "01",
            "certno": EMPLOYEE.certno, "begntime": "2026-11-30 09:00:00"}})["insuinfo"][0]["balc"])
        assert start - after == debits and after >= 0
        # Serializable: in the order of the balances they report, each settlement took its
        # acct_pay from the balance the previous one left.
        chain = sorted(infos, key=lambda i: -(to_fen(i["balc"]) + to_fen(i["acct_pay"])))
        balance = start
        for i in chain:
            assert to_fen(i["balc"]) == balance - to_fen(i["acct_pay"])
            balance = to_fen(i["balc"])
        assert balance == after
        assert sum(to_fen(i["act_pay_dedc"]) for i in infos) > 0
        first.close()
    finally:
        assert sim.stop() == 0
    engine = make_engine(db_url)
    try:
        with Session(engine) as s:
            rows = list(s.scalars(select(Settlement).where(Settlement.psn_no == EMPLOYEE.psn_no)))
            assert len(rows) == VISITS  # the duplicates made nothing
            ytd = s.scalars(select(YearTotal).where(YearTotal.psn_no == EMPLOYEE.psn_no)).one()
            assert ytd.dedc_used_fen == sum(r.act_pay_dedc for r in rows)
            assert ytd.fund_paid_fen == sum(r.ytd_fund_fen for r in rows)
            assert s.get(Account, EMPLOYEE.psn_no).balc_fen == after
    finally:
        engine.dispose()


def answer(status: int, content: bytes) -> dict:
    assert status == 200, content
    return wire.loads(content)


def test_sim_concurrent_identical_msgids_take_effect_once(db_url):
    sim = SimProcess(db_url).start()
    try:
        c = Client(sim.url)
        c.sign_in()
        psn, mid, total = new_visit(c, EMPLOYEE)
        pre = q2206(psn, mid, "310", total)
        s = c.ok("2206", pre)["setlinfo"]
        body = c.body("2207", q2207(pre, s))
        with ThreadPoolExecutor(8) as pool:
            answers = [r.content for r in pool.map(c.post, [body] * 8)]
        assert len(set(answers)) == 1
        info = answer(200, answers[0])
        assert info["infcode"] == 0
        assert to_fen(info["output"]["setlinfo"]["balc"]) == EMPLOYEE.balc_fen - to_fen(
            info["output"]["setlinfo"]["acct_pay"])
        c.close()
    finally:
        sim.stop()
    engine = make_engine(db_url)
    try:
        with Session(engine) as s:
            assert len(list(s.scalars(select(Settlement).where(
                Settlement.psn_no == EMPLOYEE.psn_no)))) == 1
    finally:
        engine.dispose()



def test_sim_workers_refuse_faults(tmp_path):
    import subprocess
    import sys

    from .conftest import ROOT
    r = subprocess.run([sys.executable, "-m", "settlement.mock_network", "--port", "0", "--db",
                        f"sqlite:///{tmp_path / 'w.db'}", "--workers", "2", "--fault",
                        "2207:http500"], check=False, cwd=ROOT, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode != 0 and "single worker" in r.stderr
