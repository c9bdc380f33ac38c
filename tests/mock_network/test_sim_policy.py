"""The policy engine against the worked examples of docs/policy.md, plus its invariants."""
from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.mock_network.policy import (
    LineIn,
    PersonIn,
    PolicyError,
    YearToDate,
    load_policy,
    parse_policy,
    round_fen,
    settle,
    split_line,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "policy.md"
POLICY = load_policy()
LINE_RE = re.compile(r"^(01|02|03|NA|GP) (\d+(?:\.\d+)?)@(\d+\.\d{2})(?:\^(\d+\.\d{2}))?$")


def fen(s: str) -> int:
    return int((Decimal(s) * 100).to_integral_value())


def parse_lines(spec: str) -> list[LineIn]:
    out = []
    for part in spec.split(";"):
        m = LINE_RE.match(part.strip())
        assert m, f"bad line spec {part!r} in docs/policy.md"
        cls, cnt, price, ceil = m.groups()
        cnt_d = Decimal(cnt)
        out.append(LineIn(sumamt_fen=round_fen(cnt_d * Decimal(price) * 100), cnt=cnt_d,
                          chrgitm_lv=None if cls == "NA" else "01" if cls == "GP" else cls,
                          ceiling_fen=fen(ceil) if ceil else None, consultation=cls == "GP"))
    return out


def doc_examples() -> list[dict[str, str]]:
    text = DOC.read_text(encoding="utf-8")
    block = text.split("<!-- examples:start -->")[1].split("<!-- examples:end -->")[0]
    rows = [r.strip().strip("|").split("|") for r in block.strip().splitlines()]
    head = [h.strip() for h in rows[0]]
    return [dict(zip(head, (c.strip() for c in r))) for r in rows[2:]]


EXAMPLES = doc_examples()
RESULT_COLUMNS = ("medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt",
                  "inscp_scp_amt", "act_pay_dedc", "hifp_pay", "acct_pay", "psn_cash_pay", "balc")


def test_sim_policy_doc_has_worked_examples():
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize("row", EXAMPLES, ids=[r["#"] for r in EXAMPLES])
def test_sim_policy_matches_worked_example_in_doc(row):
    out = settle(parse_lines(row["lines"]), PersonIn(row["insutype"], int(row["age"])),
                 YearToDate(fen(row["dedc_used"]), fen(row["fund_paid"])), fen(row["balance"]),
                 POLICY, use_account=row["acct"] == "1")
    got = {k: getattr(out, k) for k in RESULT_COLUMNS}
    want = {k: fen(row[k]) for k in RESULT_COLUMNS}
    assert got == want


def test_sim_policy_half_fen_rounds_up():
    assert round_fen(Decimal("100.5")) == 101
    assert round_fen(Decimal("100.4999")) == 100
    s = split_line(LineIn(1005, Decimal(3), "02"), POLICY)
    assert (s.preselfpay_fen, s.inscp_fen) == (101, 904)


def test_sim_policy_unlisted_item_is_fully_self_paid():
    s = split_line(LineIn(1234, Decimal(1), None), POLICY)
    assert (s.fulamt_ownpay_fen, s.inscp_fen) == (1234, 0)


def test_sim_policy_default_file_is_marked_illustrative():
    assert POLICY.illustrative is True


def test_sim_policy_refuses_ratio_above_one():
    import tomllib

    from settlement.mock_network.policy import DEFAULT_POLICY_PATH
    raw = tomllib.loads(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    raw["insutype"]["390"]["band"][0]["fund_ratio"] = "1.5"
    with pytest.raises(PolicyError):
        parse_policy(raw)


def test_sim_policy_refuses_missing_file(tmp_path):
    with pytest.raises(PolicyError):
        load_policy(tmp_path / "nope.toml")


def test_sim_policy_refuses_bands_not_covering_age_zero():
    import tomllib

    from settlement.mock_network.policy import DEFAULT_POLICY_PATH
    raw = tomllib.loads(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    raw["insutype"]["310"]["band"][0]["min_age"] = 18
    with pytest.raises(PolicyError):
        parse_policy(raw)


# ---- properties -------------------------------------------------------------------------

lines_st = st.lists(st.builds(
    lambda cnt, price, lv, ceil, gp: LineIn(round_fen(Decimal(cnt) * price), Decimal(cnt),
                                            "01" if gp else lv, ceil, gp),
    st.integers(1, 30), st.integers(0, 50_000).map(Decimal),
    st.sampled_from(["01", "02", "03", None]),
    st.one_of(st.none(), st.integers(0, 60_000)), st.booleans()), min_size=1, max_size=8)


@settings(max_examples=400, deadline=None)
@given(lines=lines_st, insutype=st.sampled_from(["310", "390"]), age=st.integers(0, 110),
       dedc=st.integers(0, 300_000), fund=st.integers(0, 2_000_000),
       balance=st.integers(0, 1_000_000), use_acct=st.booleans())
def test_sim_policy_identities_hold_and_nothing_goes_negative(lines, insutype, age, dedc, fund,
                                                               balance, use_acct):
    o = settle(lines, PersonIn(insutype, age), YearToDate(dedc, fund), balance, POLICY,
               use_account=use_acct)
    assert o.medfee_sumamt == sum(l.sumamt_fen for l in lines)
    assert o.medfee_sumamt == o.fulamt_ownpay_amt + o.overlmt_selfpay + o.preselfpay_amt + o.inscp_scp_amt
    assert o.medfee_sumamt == o.fund_pay_sumamt + o.psn_part_amt + o.hosp_part_amt
    assert o.psn_part_amt == o.acct_pay + o.psn_cash_pay
    for k in ("fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt",
              "act_pay_dedc", "hifp_pay", "psn_part_amt", "acct_pay", "psn_cash_pay", "balc"):
        assert getattr(o, k) >= 0, k
    assert o.balc == balance - o.acct_pay
    assert o.act_pay_dedc <= o.inscp_scp_amt
    assert o.hifp_pay <= o.inscp_scp_amt
    if insutype == "390" or not use_acct:
        assert o.acct_pay == 0
    band = POLICY.for_insutype(insutype).band_for(age)
    assert o.ytd_after.fund_paid_fen <= max(fund, band.yearly_cap_fen)
    assert o.ytd_after.dedc_used_fen <= max(dedc, band.deductible_fen)
