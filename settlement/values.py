"""Values the insurer's messages carry, in the counter's terms (integer fen, typed fields)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class Credential:
    """How the patient identified: card (03), electronic voucher token (01) or ID number (02)."""
    mdtrt_cert_type: str
    mdtrt_cert_no: str
    card_sn: str = ""
    certno: str = ""
    psn_name: str = ""

    def __repr__(self) -> str:
        return f"Credential(type={self.mdtrt_cert_type})"


@dataclass(frozen=True)
class Person:
    psn_no: str
    psn_name: str
    certno: str
    gend: str
    brdy: date | None
    age: int
    insutype: str
    psn_type: str
    psn_insu_stas: str
    balc_fen: int
    insuplc_admdvs: str

    def __repr__(self) -> str:  # keep identifiers out of any log line built from a repr
        return f"Person(psn_no=***{self.psn_no[-3:]}, insutype={self.insutype}, age={self.age})"

    @property
    def insutype_name(self) -> str:
        return INSUTYPE_NAMES.get(self.insutype, self.insutype)


INSUTYPE_NAMES = {"310": "职工基本医疗保险", "390": "城乡居民基本医疗保险", "340": "离休人员医疗保障"}


@dataclass(frozen=True)
class Split:
    """The money of a (pre-)settlement, in integer fen, with protocol.md's identities."""
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

    def identity_errors(self) -> list[str]:
        errs = []
        if self.medfee_sumamt != (self.fulamt_ownpay_amt + self.overlmt_selfpay
                                  + self.preselfpay_amt + self.inscp_scp_amt):
            errs.append("medfee_sumamt != fulamt_ownpay_amt + overlmt_selfpay + preselfpay_amt + inscp_scp_amt")
        if self.medfee_sumamt != self.fund_pay_sumamt + self.psn_part_amt + self.hosp_part_amt:
            errs.append("medfee_sumamt != fund_pay_sumamt + psn_part_amt + hosp_part_amt")
        if self.psn_part_amt != self.acct_pay + self.psn_cash_pay:
            errs.append("psn_part_amt != acct_pay + psn_cash_pay")
        return errs



@dataclass(frozen=True)
class FeeLine:
    """One fee line to upload (2204): a dispensed drug, priced in fen."""
    feedetl_sn: str
    code: str
    qty: int
    price_fen: int
    days: int

    @property
    def amount_fen(self) -> int:
        return self.qty * self.price_fen


@dataclass(frozen=True)
class SetlInfo:
    """2206/2207's setlinfo: ids plus the split. setl_id is empty for a pre-settlement."""
    setl_id: str
    setl_time: str
    mdtrt_id: str
    medins_setl_id: str
    split: Split
