"""The reimbursement engine: a pure function from (lines, person, year-to-date, balance, policy)
to the settlement amounts, all in integer fen.

Figures come from a TOML policy file (policy_default.toml: illustrative, not official).
Rounding is explicit: every computed amount is rounded to the fen, ROUND_HALF_UP.
"""
from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

DEFAULT_POLICY_PATH = Path(__file__).with_name("policy_default.toml")
CLASSES = ("01", "02", "03")


class PolicyError(ValueError):
    """A policy file that cannot be used."""


def round_fen(x: Decimal) -> int:
    return int(x.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class Band:
    min_age: int
    deductible_fen: int
    fund_ratio: Decimal
    yearly_cap_fen: int


@dataclass(frozen=True)
class InsuPolicy:
    insutype: str
    name: str
    fund_pay_type: str
    fund_pay_type_name: str
    personal_account: bool
    consultation_fund_fen: int
    bands: tuple[Band, ...]  # sorted by min_age, highest first
    account_pay_type: str = ""
    account_pay_type_name: str = ""

    def band_for(self, age: int) -> Band:
        for b in self.bands:
            if age >= b.min_age:
                return b
        raise PolicyError(f"no band for age {age} in insutype {self.insutype}")


@dataclass(frozen=True)
class Policy:
    name: str
    version: str
    class_share: dict[str, Decimal]
    consultation_code: str
    consultation_name: str
    consultation_price_fen: int
    insutypes: dict[str, InsuPolicy]
    illustrative: bool = True

    def for_insutype(self, insutype: str) -> InsuPolicy:
        try:
            return self.insutypes[insutype]
        except KeyError:
            raise PolicyError(f"insutype {insutype} not in policy") from None


def _ratio(v: Any, what: str) -> Decimal:
    if isinstance(v, bool):
        raise PolicyError(f"{what}: not a ratio")
    d = Decimal(str(v))
    if not d.is_finite() or d < 0 or d > 1:
        raise PolicyError(f"{what}: ratio {v!r} outside 0..1")
    return d


def _fen(v: Any, what: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise PolicyError(f"{what}: must be a non-negative integer number of fen")
    return v


def load_policy(path: str | Path | None = None) -> Policy:
    p = Path(path) if path else DEFAULT_POLICY_PATH
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"cannot read policy {p}: {exc}") from exc
    return parse_policy(raw)


def parse_policy(raw: dict[str, Any]) -> Policy:
    try:
        meta = raw.get("meta", {})
        shares = {k: _ratio(raw["class_share"][k], f"class_share.{k}") for k in CLASSES}
        cons = raw["consultation"]
        insutypes: dict[str, InsuPolicy] = {}
        for code, t in raw["insutype"].items():
            bands = tuple(sorted(
                (Band(int(b["min_age"]), _fen(b["deductible_fen"], "deductible_fen"),
                      _ratio(b["fund_ratio"], "fund_ratio"), _fen(b["yearly_cap_fen"], "yearly_cap_fen"))
                 for b in t["band"]),
                key=lambda b: -b.min_age))
            if not bands or bands[-1].min_age != 0:
                raise PolicyError(f"insutype {code}: bands must cover age 0")
            insutypes[str(code)] = InsuPolicy(
                insutype=str(code), name=t["name"], fund_pay_type=t["fund_pay_type"],
                fund_pay_type_name=t["fund_pay_type_name"],
                personal_account=bool(t.get("personal_account", False)),
                consultation_fund_fen=_fen(t.get("consultation_fund_fen", 0), "consultation_fund_fen"),
                bands=bands,
                account_pay_type=t.get("account_pay_type", ""),
                account_pay_type_name=t.get("account_pay_type_name", ""))
        return Policy(name=meta.get("name", ""), version=str(meta.get("version", "")),
                      class_share=shares, consultation_code=cons["code"],
                      consultation_name=cons["name"],
                      consultation_price_fen=_fen(cons["price_fen"], "consultation.price_fen"),
                      insutypes=insutypes, illustrative=bool(meta.get("illustrative", True)))
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        if isinstance(exc, PolicyError):
            raise
        raise PolicyError(f"policy file incomplete or wrong: {exc!r}") from exc


# ---- per line ---------------------------------------------------------------------------

@dataclass(frozen=True)
class LineIn:
    """One fee line as the engine sees it. chrgitm_lv None = not in the catalogue."""
    sumamt_fen: int
    cnt: Decimal = Decimal(1)
    chrgitm_lv: str | None = "01"
    ceiling_fen: int | None = None  # unit price ceiling (最高限价), fen
    consultation: bool = False


@dataclass(frozen=True)
class LineSplit:
    fulamt_ownpay_fen: int
    overlmt_fen: int
    preselfpay_fen: int
    inscp_fen: int
    selfpay_prop: Decimal

    @property
    def total(self) -> int:
        return self.fulamt_ownpay_fen + self.overlmt_fen + self.preselfpay_fen + self.inscp_fen


def split_line(line: LineIn, policy: Policy) -> LineSplit:
    """Divide a line into fully self-paid / over the ceiling / 先行自付 / in scope."""
    s = line.sumamt_fen
    if line.chrgitm_lv is None or line.chrgitm_lv not in CLASSES:
        return LineSplit(s, 0, 0, 0, Decimal(1))
    share = policy.class_share[line.chrgitm_lv]
    if share >= 1:
        return LineSplit(s, 0, 0, 0, share)
    allowed = s
    if line.ceiling_fen is not None:
        allowed = min(s, round_fen(line.cnt * Decimal(line.ceiling_fen)))
    over = s - allowed
    pre = round_fen(Decimal(allowed) * share)
    return LineSplit(0, over, pre, allowed - pre, share)


# ---- per settlement ---------------------------------------------------------------------

@dataclass(frozen=True)
class PersonIn:
    insutype: str
    age: int


@dataclass(frozen=True)
class YearToDate:
    dedc_used_fen: int = 0   # counted toward the deductible this year
    fund_paid_fen: int = 0   # pooled fund paid this year, counted against the cap


@dataclass(frozen=True)
class Outcome:
    medfee_sumamt: int
    fulamt_ownpay_amt: int
    overlmt_selfpay: int
    preselfpay_amt: int
    inscp_scp_amt: int
    act_pay_dedc: int
    hifp_pay: int
    fund_pay_sumamt: int
    psn_part_amt: int
    acct_pay: int
    psn_cash_pay: int
    hosp_part_amt: int
    balc: int
    pool_prop_selfpay: Decimal
    ytd_after: YearToDate
    ytd_fund_delta: int          # the capped part of hifp_pay (consultation subsidy excluded)
    deductible_fen: int
    fund_ratio: Decimal
    cap_remaining_fen: int       # cap left before this settlement
    consultation_fund: int
    lines: tuple[LineSplit, ...] = field(default=())


def settle(lines: Sequence[LineIn], person: PersonIn, ytd: YearToDate, balance_fen: int,
           policy: Policy, *, use_account: bool = True) -> Outcome:
    ip = policy.for_insutype(person.insutype)
    band = ip.band_for(person.age)
    splits = tuple(split_line(l, policy) for l in lines)
    med = sum(l.sumamt_fen for l in lines)
    ful = sum(s.fulamt_ownpay_fen for s in splits)
    over = sum(s.overlmt_fen for s in splits)
    pre = sum(s.preselfpay_fen for s in splits)
    inscp = sum(s.inscp_fen for s in splits)

    # The consultation fee is subsidised directly, outside the deductible and the cap.
    cons_inscp = 0
    if ip.consultation_fund_fen:
        cons_inscp = sum(s.inscp_fen for l, s in zip(lines, splits) if l.consultation)
    cons_fund = min(cons_inscp, ip.consultation_fund_fen)
    ordinary = inscp - cons_inscp

    dedc_left = max(0, band.deductible_fen - ytd.dedc_used_fen)
    dedc = min(ordinary, dedc_left)
    cap_left = max(0, band.yearly_cap_fen - ytd.fund_paid_fen)
    ord_fund = min(round_fen(Decimal(ordinary - dedc) * band.fund_ratio), cap_left)

    hifp = ord_fund + cons_fund
    fund_sum = hifp
    hosp = 0
    psn_part = med - fund_sum - hosp
    acct = 0
    if ip.personal_account and use_account:
        acct = max(0, min(balance_fen, psn_part))
    cash = psn_part - acct
    return Outcome(
        medfee_sumamt=med, fulamt_ownpay_amt=ful, overlmt_selfpay=over, preselfpay_amt=pre,
        inscp_scp_amt=inscp, act_pay_dedc=dedc, hifp_pay=hifp, fund_pay_sumamt=fund_sum,
        psn_part_amt=psn_part, acct_pay=acct, psn_cash_pay=cash, hosp_part_amt=hosp,
        balc=balance_fen - acct, pool_prop_selfpay=1 - band.fund_ratio,
        ytd_after=YearToDate(ytd.dedc_used_fen + dedc, ytd.fund_paid_fen + ord_fund),
        ytd_fund_delta=ord_fund, deductible_fen=band.deductible_fen, fund_ratio=band.fund_ratio,
        cap_remaining_fen=cap_left, consultation_fund=cons_fund, lines=splits)
