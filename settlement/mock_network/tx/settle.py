"""2206 pre-settle, 2207 settle, 2208 revoke."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select

from settlement import wire
from settlement.money import to_wire, yuan

from ..db import AMOUNTS, Account, FeeLine, Settlement, Visit, YearTotal
from ..policy import LineIn, Outcome, PersonIn, YearToDate, settle
from .common import (
    Ctx,
    PersonRow,
    TxError,
    age_on,
    amount,
    check_insured,
    covered,
    diagnoses,
    handler,
    node,
    person,
    text,
    ymd,
    ymdhms,
)
from .visit import VISIT_COLS, VisitRow

BREAKDOWN = ("fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt")
NAMES = {"fulamt_ownpay_amt": "全自费金额", "overlmt_selfpay": "超限价自费金额",
         "preselfpay_amt": "先行自付金额", "inscp_scp_amt": "符合政策范围金额",
         "medfee_sumamt": "医疗费总额"}


@dataclass
class Computed:
    p: PersonRow
    v: VisitRow
    out: Outcome
    balance: int
    ytd: YearToDate | None       # None: no yearly total yet
    mdtrt_cert_type: str


# After the person's lock (common.person): the visit, the account and this year's totals as
# the previous holder of the lock left them.
_VISIT_BOOKS = (f"SELECT {VISIT_COLS}, "
                "(SELECT balc_fen FROM account WHERE psn_no = %s), "
                "(SELECT dedc_used_fen FROM year_total WHERE psn_no = %s AND year = %s), "
                "(SELECT fund_paid_fen FROM year_total WHERE psn_no = %s AND year = %s) "
                "FROM visit WHERE mdtrt_id = %s")
_LINES = ("SELECT feedetl_sn, sumamt_fen, cnt, chrgitm_lv, ceiling_fen, consultation, restrict_dx "
          "FROM fee_line WHERE mdtrt_id = %s AND setl_id IS NULL ORDER BY id")


def _compute(ctx: Ctx, d: dict) -> Computed:
    p = person(ctx, text(d, "psn_no"))
    check_insured(p)
    mdtrt_id = text(d, "mdtrt_id")
    year = ctx.now.year
    row = ctx.one(_VISIT_BOOKS, (p.psn_no, p.psn_no, year, p.psn_no, year, mdtrt_id))
    v = VisitRow(*row[:7]) if row else None
    if v is None or v.fixmedins_code != ctx.fixmedins_code:
        raise TxError(f"就诊ID {mdtrt_id} 不存在")
    balc_fen, dedc_used, fund_paid = row[7:]
    if v.psn_no != p.psn_no:
        raise TxError("就诊ID与人员编号不符")
    if v.status == "settled":
        setl = ctx.one("SELECT setl_id FROM settlement WHERE mdtrt_id = %s AND kind = 'settle' "
                       "AND status = 'normal'", (v.mdtrt_id,))
        setl = setl[0] if setl else None
        raise TxError(f"该就诊已结算（结算ID {setl}），不能重复结算")
    if v.status == "cancelled":
        raise TxError("该挂号已撤销，不能结算")
    insutype = text(d, "insutype")
    if insutype != v.insutype:
        raise TxError(f"险种类型 {insutype} 与挂号时的险种 {v.insutype} 不符")
    if text(d, "psn_setlway") != "01":
        raise TxError("模拟器只支持按项目结算（psn_setlway 01）")
    cert_type = text(d, "mdtrt_cert_type")
    text(d, "mdtrt_cert_no")
    text(d, "med_type")
    flag = text(d, "acct_used_flag", required=False, default="1")
    if flag not in ("0", "1"):
        raise TxError("个人账户使用标志 acct_used_flag 应为 0 或 1")
    codes = diagnoses(ctx, v.mdtrt_id)
    if not codes:
        raise TxError("该就诊没有有效诊断，请先上传就诊信息和诊断（2203）")
    lines = ctx.q(_LINES, (v.mdtrt_id,)).fetchall()
    if not lines:
        raise TxError("没有待结算的费用明细，请先上传费用明细（2204）")
    total = sum(l[1] for l in lines)
    sent = amount(d, "medfee_sumamt")
    if sent != total:
        raise TxError(f"医疗费总额 {yuan(sent)} 元与已上传费用明细合计 {yuan(total)} 元不符")
    balance = balc_fen or 0
    ytd = YearToDate(dedc_used, fund_paid) if dedc_used is not None else None
    engine_lines = []
    for sn, fen, cnt, lv, ceiling, consultation, restrict_dx in lines:
        if lv is not None and not covered(restrict_dx, codes):
            lv = None  # restricted item without a matching diagnosis: fully self-paid
            ctx.warnings.append(f"流水号 {sn} 限定支付，诊断不符合 {restrict_dx.replace(';', '/')}，按自费结算")
        engine_lines.append(LineIn(fen, Decimal(cnt), lv, ceiling, bool(consultation)))
    out = settle(
        engine_lines,
        PersonIn(p.insutype, age_on(p.brdy, ctx.now.date())),
        ytd or YearToDate(), balance, ctx.policy, use_account=flag == "1")
    return Computed(p, v, out, balance, ytd, cert_type)


def setlinfo(ctx: Ctx, c_p: PersonRow, v: VisitRow | Visit, amounts: dict[str, int], *, setl_id: str | None,
             setl_time: datetime | None, medins_setl_id: str | None, cert_type: str,
             pool_prop_selfpay: Decimal, balc: int) -> dict:
    info = {
        "mdtrt_id": v.mdtrt_id, "setl_id": setl_id, "medins_setl_id": medins_setl_id,
        "psn_no": c_p.psn_no, "psn_name": c_p.psn_name, "certno": c_p.certno, "gend": c_p.gend,
        "brdy": ymd(c_p.brdy), "age": age_on(c_p.brdy, ctx.now.date()), "insutype": v.insutype,
        "psn_type": c_p.psn_type, "mdtrt_cert_type": cert_type, "setl_time": ymdhms(setl_time),
        "med_type": v.med_type, "clr_optins": "310116", "clr_way": "1", "clr_type": "11",
    }
    for k in ("medfee_sumamt", *BREAKDOWN, "act_pay_dedc", "hifp_pay"):
        info[k] = to_wire(amounts[k])
    info["pool_prop_selfpay"] = pool_prop_selfpay
    for k in ("cvlserv_pay", "hifes_pay", "hifmi_pay", "hifob_pay", "maf_pay", "oth_pay"):
        info[k] = to_wire(0)  # the simulator's village outpatient uses the pooled fund only
    for k in ("fund_pay_sumamt", "psn_part_amt", "acct_pay", "psn_cash_pay", "hosp_part_amt"):
        info[k] = to_wire(amounts[k])
    info["balc"] = to_wire(balc)
    return info


def setldetail(ctx: Ctx, insutype: str, out: Outcome, balance_before: int, sign: int = 1) -> list[dict]:
    ip = ctx.policy.for_insutype(insutype)
    proc = (f"起付线{yuan(out.deductible_fen)}元，本次计入起付线{yuan(out.act_pay_dedc)}元；"
            f"统筹支付比例{(out.fund_ratio * 100).normalize():f}%，年度剩余限额{yuan(out.cap_remaining_fen)}元")
    if out.consultation_fund:
        proc += f"；一般诊疗费基金支付{yuan(out.consultation_fund)}元"
    rows = [{"fund_pay_type": ip.fund_pay_type, "inscp_scp_amt": to_wire(sign * out.inscp_scp_amt),
             "crt_payb_lmt_amt": to_wire(out.cap_remaining_fen), "fund_payamt": to_wire(sign * out.hifp_pay),
             "fund_pay_type_name": ip.fund_pay_type_name, "setl_proc_info": proc}]
    if out.acct_pay:
        rows.append({"fund_pay_type": ip.account_pay_type, "inscp_scp_amt": to_wire(sign * out.inscp_scp_amt),
                     "crt_payb_lmt_amt": to_wire(balance_before), "fund_payamt": to_wire(sign * out.acct_pay),
                     "fund_pay_type_name": ip.account_pay_type_name,
                     "setl_proc_info": f"个人账户支付{yuan(out.acct_pay)}元，余额{yuan(out.balc)}元"})
    return rows


def _amounts(out: Outcome) -> dict[str, int]:
    return {k: getattr(out, k) for k in AMOUNTS}


@handler("2206", plain_sql=True)
def pre_settle(ctx: Ctx, inp: dict) -> dict:
    c = _compute(ctx, node(inp, "data"))
    return {"setlinfo": setlinfo(ctx, c.p, c.v, _amounts(c.out), setl_id=None, setl_time=None,
                                 medins_setl_id=None, cert_type=c.mdtrt_cert_type,
                                 pool_prop_selfpay=c.out.pool_prop_selfpay, balc=c.out.balc),
            "setldetail": setldetail(ctx, c.v.insutype, c.out, c.balance)}


@handler("2207", plain_sql=True)
def settle_visit(ctx: Ctx, inp: dict) -> dict:
    d = node(inp, "data")
    c = _compute(ctx, d)
    text(d, "invono", required=False)
    diffs = [f"{NAMES[k]} 送 {yuan(amount(d, k))} 元、核定 {yuan(getattr(c.out, k))} 元"
             for k in BREAKDOWN if amount(d, k) != getattr(c.out, k)]
    if diffs:
        raise TxError("结算分类金额与医保核定不符：" + "；".join(diffs) + "。请先预结算（2206）核对")
    out = c.out
    setl_id = ctx.new_id("setl")
    info = setlinfo(ctx, c.p, c.v, _amounts(out), setl_id=setl_id, setl_time=ctx.now,
                    medins_setl_id=ctx.msgid, cert_type=c.mdtrt_cert_type,
                    pool_prop_selfpay=out.pool_prop_selfpay, balc=out.balc)
    # Every effect below commits together with the message-log row, or not at all.
    psn, mid, db = c.p.psn_no, c.v.mdtrt_id, ctx.db
    ctx.q(_INSERT_SETTLEMENT,
          (setl_id, mid, psn, ctx.msgid, ctx.fixmedins_code, c.v.insutype, db.dt(ctx.now),
           ctx.now.year, *(getattr(out, k) for k in AMOUNTS), out.balc, out.ytd_fund_delta,
           wire.dumps(info)))
    ctx.q("UPDATE fee_line SET setl_id = %s WHERE mdtrt_id = %s AND setl_id IS NULL", (setl_id, mid))
    ctx.q("UPDATE visit SET status = 'settled' WHERE mdtrt_id = %s", (mid,))
    ctx.q("UPDATE account SET balc_fen = %s WHERE psn_no = %s", (out.balc, psn))
    after = out.ytd_after
    if c.ytd is not None:
        ctx.q("UPDATE year_total SET dedc_used_fen = %s, fund_paid_fen = %s "
              "WHERE psn_no = %s AND year = %s", (after.dedc_used_fen, after.fund_paid_fen, psn,
                                                  ctx.now.year))
    else:
        ctx.q("INSERT INTO year_total (psn_no, year, dedc_used_fen, fund_paid_fen) "
              "VALUES (%s, %s, %s, %s)", (psn, ctx.now.year, after.dedc_used_fen,
                                          after.fund_paid_fen))
    return {"setlinfo": info, "setldetail": setldetail(ctx, c.v.insutype, out, c.balance)}


_INSERT_SETTLEMENT = (
    "INSERT INTO settlement (setl_id, mdtrt_id, psn_no, medins_setl_id, fixmedins_code, insutype, "
    f"setl_time, year, kind, status, {', '.join(AMOUNTS)}, balc, ytd_fund_fen, output_json) "
    f"VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'settle', 'normal', {', '.join(['%s'] * len(AMOUNTS))}, "
    "%s, %s, %s)")


def undo(ctx: Ctx, orig: Settlement, status: str) -> int:
    """Give back what a settlement took: account, yearly totals, the visit's lines.
    Returns the account balance afterwards."""
    orig.status = status
    acct = ctx.s.get(Account, orig.psn_no)
    balc = 0
    if acct is not None:
        acct.balc_fen += orig.acct_pay
        balc = acct.balc_fen
    ytd = ctx.s.get(YearTotal, (orig.psn_no, orig.year))
    if ytd is not None:
        ytd.dedc_used_fen = max(0, ytd.dedc_used_fen - orig.act_pay_dedc)
        ytd.fund_paid_fen = max(0, ytd.fund_paid_fen - orig.ytd_fund_fen)
    for l in ctx.s.scalars(select(FeeLine).where(FeeLine.setl_id == orig.setl_id)):
        l.setl_id = None  # the lines can be corrected (2205) and settled again
    v = ctx.s.get(Visit, orig.mdtrt_id)
    if v is not None:
        v.status = "registered"
    return balc


@handler("2208")
def revoke(ctx: Ctx, inp: dict) -> dict:
    d = node(inp, "data")
    p = person(ctx, text(d, "psn_no"))
    setl_id = text(d, "setl_id")
    orig = ctx.s.get(Settlement, setl_id)
    if orig is None or orig.kind != "settle" or orig.fixmedins_code != ctx.fixmedins_code:
        raise TxError(f"结算ID {setl_id} 不存在")
    if orig.mdtrt_id != text(d, "mdtrt_id") or orig.psn_no != p.psn_no:
        raise TxError("结算ID与就诊ID或人员编号不符")
    if orig.status == "revoked":
        rev = ctx.s.scalars(select(Settlement.setl_id).where(Settlement.orig_setl_id == setl_id)).first()
        raise TxError(f"该结算已撤销（撤销结算ID {rev}），不能重复撤销")
    if orig.status == "reversed":
        raise TxError("该结算已被冲正，无需撤销")
    balc = undo(ctx, orig, "revoked")
    neg = {k: -getattr(orig, k) for k in AMOUNTS}
    new_id = ctx.new_id("setl")
    v = ctx.s.get(Visit, orig.mdtrt_id)
    prev = wire.loads(orig.output_json)
    info = setlinfo(ctx, p, v, neg, setl_id=new_id, setl_time=ctx.now, medins_setl_id=ctx.msgid,
                    cert_type=prev.get("mdtrt_cert_type", ""),
                    pool_prop_selfpay=prev.get("pool_prop_selfpay", Decimal(0)), balc=balc)
    ctx.s.add(Settlement(setl_id=new_id, mdtrt_id=orig.mdtrt_id, psn_no=orig.psn_no,
                         medins_setl_id=ctx.msgid, fixmedins_code=ctx.fixmedins_code,
                         insutype=orig.insutype, setl_time=ctx.now, year=orig.year, kind="revoke",
                         orig_setl_id=orig.setl_id, balc=balc, ytd_fund_fen=-orig.ytd_fund_fen,
                         output_json=wire.dumps(info), **neg))
    return {"setlinfo": info}
