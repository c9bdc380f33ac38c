"""2601 reversal (冲正) of an earlier message by its msgid."""
from __future__ import annotations

from sqlalchemy import select

from settlement import wire

from ..db import (
    FeeLine,
    MessageLog,
    ReversedUnseen,
    Settlement,
    SignIn,
    Visit,
    lock_key,
    lock_person,
)
from .common import Ctx, TxError, handler, node, person, text
from .settle import undo

NO_EFFECT = {"1101", "2203", "2206", "3201", "3202", "9002", "9101", "9102"}  # nothing to undo


def _reverse_2207(ctx: Ctx, omsgid: str) -> None:
    setl = ctx.s.scalars(select(Settlement).where(Settlement.medins_setl_id == omsgid,
                                                  Settlement.kind == "settle")).first()
    if setl is None:
        return
    lock_person(ctx.s, setl.psn_no)  # then read the settlement again: it may have changed
    ctx.s.refresh(setl)
    if setl.status == "revoked":
        raise TxError("原结算已撤销，不能冲正")
    if setl.status == "normal":
        undo(ctx, setl, "reversed")


def _reverse_2201(ctx: Ctx, omsgid: str) -> None:
    v = ctx.s.scalars(select(Visit).where(Visit.msgid == omsgid)).first()
    if v is None:
        return
    lock_person(ctx.s, v.psn_no)
    ctx.s.refresh(v)
    if v.status == "cancelled":
        return
    if v.status == "settled":
        raise TxError("原挂号已结算，不能冲正；请先撤销结算")
    for l in ctx.s.scalars(select(FeeLine).where(FeeLine.mdtrt_id == v.mdtrt_id)):
        ctx.s.delete(l)
    v.status = "cancelled"


def _reverse_2204(ctx: Ctx, omsgid: str) -> None:
    lines = list(ctx.s.scalars(select(FeeLine).where(FeeLine.msgid == omsgid)))
    mdtrt_ids = sorted({l.mdtrt_id for l in lines})
    for psn_no in sorted({ctx.s.get(Visit, m).psn_no for m in mdtrt_ids}):
        lock_person(ctx.s, psn_no)
    lines = list(ctx.s.scalars(select(FeeLine).where(FeeLine.msgid == omsgid)
                               .execution_options(populate_existing=True)))
    if any(l.setl_id for l in lines):
        raise TxError("原费用明细已结算，不能冲正；请先撤销结算")
    for l in lines:
        ctx.s.delete(l)


@handler("2601")
def reverse(ctx: Ctx, inp: dict) -> None:
    d = node(inp, "data")
    psn_no = text(d, "psn_no", required=False)
    if psn_no:  # optional: a sign-in (9001) has no person
        person(ctx, psn_no)
    omsgid = text(d, "omsgid")
    if omsgid[:12] != ctx.fixmedins_code:
        raise TxError("原报文不属于本机构，不能冲正")
    oinfno = text(d, "oinfno")[:4]
    if omsgid == ctx.msgid:
        raise TxError("不能冲正本报文自身")
    lock_key(ctx.s, omsgid)  # the original, if it is being processed right now, finishes first
    orig = ctx.s.get(MessageLog, omsgid, with_for_update=True, populate_existing=True)
    if orig is None:
        # Never seen: nothing to undo, but the original must not take effect if it comes late.
        if ctx.s.get(ReversedUnseen, omsgid) is None:
            ctx.s.add(ReversedUnseen(msgid=omsgid, oinfno=oinfno, at=ctx.now))
        return
    if orig.fixmedins_code != ctx.fixmedins_code:
        raise TxError("原报文不属于本机构，不能冲正")
    if orig.infno != oinfno:
        raise TxError(f"原交易编号 {oinfno} 与原报文的交易编号 {orig.infno} 不符")
    if orig.reversed or orig.infcode != 0 or oinfno in NO_EFFECT:
        orig.reversed = orig.reversed or orig.infcode == 0
        return
    if oinfno == "2207":
        _reverse_2207(ctx, omsgid)
    elif oinfno == "2201":
        _reverse_2201(ctx, omsgid)
    elif oinfno == "2204":
        _reverse_2204(ctx, omsgid)
    elif oinfno == "9001":
        sign_no = wire.loads(orig.response)["output"]["signinoutb"]["sign_no"]
        row = ctx.s.get(SignIn, sign_no)
        if row is not None and row.signout_time is None:
            row.signout_time = ctx.now
    else:
        raise TxError(f"不支持冲正该交易（{oinfno}），请以新的交易更正")
    orig.reversed = True
    return
