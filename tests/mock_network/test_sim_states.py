"""The registry's training states as the counter meets them through the simulator (both
databases: the `client` fixture runs on SQLite and on PostgreSQL)."""
from __future__ import annotations

from settlement.mock_network.registry import REFERENCE_DATE, select_villagers
from settlement.money import to_fen

from .conftest import Client, new_visit, q1101, q2201, settle_visit


def _one(state: str, insutype: str | None = None):
    return next(v for v in select_villagers(state=state, on=REFERENCE_DATE)
                if insutype is None or v.insutype == insutype)


def test_sim_state_deductible_reached_fund_pays_from_the_first_fen(client: Client):
    for insutype in ("390", "310"):
        v = _one("deductible_reached", insutype)
        psn, mid, total = new_visit(client, v)
        info = settle_visit(client, psn, mid, insutype, total)["setlinfo"]
        assert to_fen(info["act_pay_dedc"]) == 0 and to_fen(info["hifp_pay"]) > 0, insutype


def test_sim_state_zero_balance_employee_pays_cash_only(client: Client):
    v = _one("zero_balance")
    assert to_fen(client.ok("1101", q1101(v))["insuinfo"][0]["balc"]) == 0
    psn, mid, total = new_visit(client, v)
    info = settle_visit(client, psn, mid, "310", total)["setlinfo"]
    assert to_fen(info["acct_pay"]) == 0 and to_fen(info["balc"]) == 0
    assert to_fen(info["psn_cash_pay"]) == to_fen(info["psn_part_amt"]) > 0


def test_sim_state_suspended_and_expired_are_refused_locked_is_the_cards_business(client: Client):
    s = _one("suspended")
    assert client.ok("1101", q1101(s))["insuinfo"][0]["psn_insu_stas"] == "2"
    out = client.call("2201", q2201(s.psn_no, s.insutype, "MZSUSP1"))
    assert out["infcode"] == -1 and "暂停参保" in out["err_msg"]
    out = client.call("1101", q1101(_one("expired")))
    assert out["infcode"] == -1 and "过期" in out["err_msg"]
    locked = _one("locked")  # the insurer does not know about a PIN-blocked card
    assert client.ok("1101", q1101(locked))["baseinfo"]["psn_no"] == locked.psn_no
