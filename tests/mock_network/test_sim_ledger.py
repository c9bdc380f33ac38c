"""The insurer's books stay consistent under any sequence of settle / revoke / reverse /
repeat, and under concurrent duplicates (in-process: Simulator.handle, no HTTP)."""
from __future__ import annotations

import functools
import itertools
import shutil
import tempfile
import threading
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from settlement import wire
from settlement.mock_network.app import create_app
from settlement.mock_network.db import Account, Settlement, YearTotal
from settlement.mock_network.registry import REFERENCE_DATE, build_registry

from .conftest import CATALOGUE, INST, fee, q1101, q2201, q2203, q2206, q2207

REG = build_registry()
EMPLOYEE = next(v for v in REG if v.insutype == "310" and 5000 < v.balc_fen < 20000
                and v.insu_state == "1" and v.card_expiry_date > REFERENCE_DATE)
_serial = itertools.count(1)


@functools.lru_cache(maxsize=1)
def _template() -> Path:
    """A seeded database to copy: seeding 2,700 villagers per example would dominate the run."""
    path = Path(tempfile.mkdtemp(prefix="simtpl")) / "t.db"
    create_app(f"sqlite:///{path}", catalogue_path=str(CATALOGUE)).state.sim.engine.dispose()
    return path


class InProcess:
    def __init__(self, db_path: Path):
        shutil.copy(_template(), db_path)
        self.sim = create_app(f"sqlite:///{db_path}", catalogue_path=str(CATALOGUE)).state.sim
        self.sign_no = ""
        self.sign_no = self.ok("9001", {"signIn": {"opter_no": "001"}})["signinoutb"]["sign_no"]

    def body(self, infno: str, inp: dict) -> bytes:
        msgid = wire.make_msgid(INST.fixmedins_code, datetime(2026, 11, 30, 9), next(_serial))
        return wire.dumps(wire.envelope(infno=infno, msgid=msgid, institution=INST, opter="001",
                                        opter_name="x", now=datetime.now(), input=inp,
                                        sign_no=self.sign_no, insuplc_admdvs="310116"))

    def send(self, body: bytes) -> dict:
        return wire.loads(self.sim.handle(body))

    def call(self, infno: str, inp: dict) -> dict:
        return self.send(self.body(infno, inp))

    def ok(self, infno: str, inp: dict):
        out = self.call(infno, inp)
        assert out["infcode"] == 0, out["err_msg"]
        return out["output"]

    def visit(self, v, price: str) -> tuple[str, str, Decimal]:
        mid = self.ok("2201", q2201(v.psn_no, v.insutype, f"MZ{next(_serial)}"))["data"]["mdtrt_id"]
        self.ok("2203", q2203(mid, v.psn_no))
        f = fee(mid, v.psn_no, "1", "XB01ACA056A012030101554", "1", price)
        self.ok("2204", {"feedetail": [f]})
        return v.psn_no, mid, f["det_item_fee_sumamt"]


def check_books(sim, v) -> None:
    """Balance + what live settlements took = the registry's opening balance; yearly totals =
    the sum over live settlements."""
    with Session(sim.engine) as s:
        live = [x for x in s.scalars(select(Settlement).where(Settlement.psn_no == v.psn_no,
                                                              Settlement.kind == "settle"))
                if x.status == "normal"]
        acct = s.get(Account, v.psn_no).balc_fen
        assert acct >= 0
        assert acct + sum(x.acct_pay for x in live) == v.balc_fen
        ytd = s.get(YearTotal, (v.psn_no, 2026)) or YearTotal(dedc_used_fen=0, fund_paid_fen=0)
        # (settlements are dated by the simulator's clock; the test year is the current one)
        years = {x.year for x in live}
        if years <= {2026}:
            assert ytd.dedc_used_fen == sum(x.act_pay_dedc for x in live)
            assert ytd.fund_paid_fen == sum(x.ytd_fund_fen for x in live)


ops = st.lists(st.tuples(st.sampled_from(["settle", "revoke", "reverse", "repeat"]),
                         st.integers(1, 9999), st.integers(0, 50)), min_size=1, max_size=12)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=ops)
def test_sim_books_balance_under_any_sequence(tmp_path_factory, ops):
    p = InProcess(tmp_path_factory.mktemp("ledger") / "l.db")
    v = EMPLOYEE
    p.ok("1101", q1101(v))
    done: list[tuple[str, str, dict, bytes]] = []  # (psn, mid, setlinfo, 2207 body)
    for op, cents, pick in ops:
        if op == "settle" or not done:
            psn, mid, total = p.visit(v, f"{cents // 100}.{cents % 100:02d}")
            pre = q2206(psn, mid, "310", total)
            body = p.body("2207", q2207(pre, p.ok("2206", pre)["setlinfo"]))
            out = p.send(body)
            assert out["infcode"] == 0, out["err_msg"]
            done.append((psn, mid, out["output"]["setlinfo"], body))
            continue
        psn, mid, s, body = done[pick % len(done)]
        if op == "revoke":
            p.call("2208", {"data": {"setl_id": s["setl_id"], "mdtrt_id": mid, "psn_no": psn}})
        elif op == "reverse":
            p.call("2601", {"data": {"psn_no": psn, "omsgid": wire.loads(body)["msgid"], "oinfno": "2207"}})
        else:
            assert p.sim.handle(body) == p.sim.handle(body)
        check_books(p.sim, v)
    check_books(p.sim, v)
    p.sim.engine.dispose()


def test_sim_concurrent_duplicates_settle_once(tmp_path):
    p = InProcess(tmp_path / "c.db")
    v = EMPLOYEE
    psn, mid, total = p.visit(v, "88.00")
    pre = q2206(psn, mid, "310", total)
    s6 = p.ok("2206", pre)
    same = p.body("2207", q2207(pre, s6["setlinfo"]))
    others = [p.body("2207", q2207(pre, s6["setlinfo"], invono=f"FP{i}")) for i in range(4)]
    results: list[bytes] = []
    threads = [threading.Thread(target=lambda b=b: results.append(p.sim.handle(b)))
               for b in [same] * 4 + others]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    answers = [wire.loads(r) for r in results]
    assert sum(a["infcode"] == 0 for a in answers) in (1, 4)  # one settlement, maybe answered 4×
    assert len({r for r in results if wire.loads(r)["infcode"] == 0}) == 1
    with Session(p.sim.engine) as s:
        assert len(list(s.scalars(select(Settlement).where(Settlement.mdtrt_id == mid)))) == 1
    check_books(p.sim, v)
    p.sim.engine.dispose()
