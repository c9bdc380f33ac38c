"""3201 totals reconciliation (对总账)."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from settlement.money import yuan

from ..db import Settlement
from .common import Ctx, TxError, amount, handler, node, text


def _day(d: dict, key: str) -> datetime:
    v = text(d, key)
    for fmt in ("%Y-%m-%d", "%Y%m%d", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(v, fmt).replace(hour=0, minute=0, second=0)
        except ValueError:
            continue
    raise TxError(f"日期 {key} 格式错误，应为 yyyy-MM-dd")


@handler("3201")
def reconcile(ctx: Ctx, inp: dict) -> dict:
    d = node(inp, "data")
    insutype = text(d, "insutype")
    if text(d, "clr_type") != "11":
        raise TxError("模拟器只支持门诊清算类别（clr_type 11）")
    optins = text(d, "setl_optins")
    begin, end = _day(d, "stmt_begndate"), _day(d, "stmt_enddate")
    if end < begin:
        raise TxError("对账结束日期早于开始日期")
    refd = text(d, "refd_setl_flag", required=False, default="0")
    if refd not in ("0", "1"):
        raise TxError("退费结算标志 refd_setl_flag 应为 0 或 1")
    try:
        cnt_sent = int(text(d, "fixmedins_setl_cnt"))
    except ValueError:
        raise TxError("结算笔数 fixmedins_setl_cnt 应为整数") from None
    sent = (amount(d, "medfee_sumamt"), amount(d, "fund_pay_sumamt"), amount(d, "acct_pay"), cnt_sent)

    rows = ctx.s.scalars(select(Settlement).where(
        Settlement.fixmedins_code == ctx.fixmedins_code, Settlement.insutype == insutype,
        Settlement.setl_time >= begin, Settlement.setl_time < end + timedelta(days=1),
        Settlement.status != "reversed"))
    med = fund = acct = cnt = 0
    for r in rows:
        # A revoked settlement and its revocation cancel out; "0" leaves both out.
        if refd == "0" and (r.kind == "revoke" or r.status == "revoked"):
            continue
        med, fund, acct, cnt = med + r.medfee_sumamt, fund + r.fund_pay_sumamt, acct + r.acct_pay, cnt + 1
    ours = (med, fund, acct, cnt)
    if ours == sent:
        return {"stmtinfo": {"setl_optins": optins, "stmt_rslt": "0", "stmt_rslt_dscr": "平"}}
    labels = ("医疗费总额", "基金支付总额", "个人账户支付总额")
    diffs = [f"{labels[i]}：机构 {yuan(sent[i])} 元，中心 {yuan(ours[i])} 元"
             for i in range(3) if sent[i] != ours[i]]
    if cnt != cnt_sent:
        diffs.append(f"结算笔数：机构 {cnt_sent} 笔，中心 {cnt} 笔")
    return {"stmtinfo": {"setl_optins": optins, "stmt_rslt": "1",
                         "stmt_rslt_dscr": "不平：" + "；".join(diffs)}}
