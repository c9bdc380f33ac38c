"""2201 registration, 2202 cancel registration, 2203 visit and diagnosis upload."""
from __future__ import annotations

from sqlalchemy import delete, select

from ..db import Diagnosis, FeeLine, Visit
from .common import Ctx, TxError, check_insured, handler, node, person, text, timestamp


def open_visit(ctx: Ctx, mdtrt_id: str, psn_no: str) -> Visit:
    """A visit of this institution and person that can still take data."""
    v = ctx.s.get(Visit, mdtrt_id)
    if v is None or v.fixmedins_code != ctx.fixmedins_code:
        raise TxError(f"就诊ID {mdtrt_id} 不存在")
    if v.psn_no != psn_no:
        raise TxError("就诊ID与人员编号不符")
    if v.status == "cancelled":
        raise TxError("该挂号已撤销，请重新挂号")
    if v.status == "settled":
        raise TxError("该就诊已结算，不能再修改；如需更正请先撤销结算")
    return v


@handler("2201")
def register(ctx: Ctx, inp: dict) -> dict:
    d = node(inp, "data")
    p = person(ctx, text(d, "psn_no"))
    check_insured(p)
    insutype = text(d, "insutype")
    if insutype != p.insutype:
        raise TxError(f"险种类型 {insutype} 与该人员参保险种 {p.insutype} 不符")
    ipt_otp_no = text(d, "ipt_otp_no")
    dup = ctx.s.scalars(select(Visit).where(Visit.fixmedins_code == ctx.fixmedins_code,
                                            Visit.ipt_otp_no == ipt_otp_no)).first()
    if dup is not None:
        raise TxError(f"门诊号 {ipt_otp_no} 已挂号，不能重复挂号")
    v = Visit(mdtrt_id=ctx.new_id("mdtrt"), psn_no=p.psn_no, fixmedins_code=ctx.fixmedins_code,
              insutype=insutype, ipt_otp_no=ipt_otp_no, begntime=timestamp(d, "begntime"),
              mdtrt_cert_type=text(d, "mdtrt_cert_type"), med_type="11", msgid=ctx.msgid,
              dr_name=text(d, "dr_name", required=False), dept_name=text(d, "dept_name", required=False))
    text(d, "mdtrt_cert_no")
    ctx.s.add(v)
    return {"data": {"mdtrt_id": v.mdtrt_id, "psn_no": v.psn_no, "ipt_otp_no": v.ipt_otp_no}}


@handler("2202")
def cancel_registration(ctx: Ctx, inp: dict) -> None:
    d = node(inp, "data")
    p = person(ctx, text(d, "psn_no"))
    v = open_visit(ctx, text(d, "mdtrt_id"), p.psn_no)
    if text(d, "ipt_otp_no") != v.ipt_otp_no:
        raise TxError("门诊号与就诊ID不符")
    ctx.s.execute(delete(FeeLine).where(FeeLine.mdtrt_id == v.mdtrt_id, FeeLine.setl_id.is_(None)))
    v.status = "cancelled"


@handler("2203")
def visit_info(ctx: Ctx, inp: dict) -> None:
    m = node(inp, "mdtrtinfo")
    p = person(ctx, text(m, "psn_no"))
    v = open_visit(ctx, text(m, "mdtrt_id"), p.psn_no)
    v.med_type = text(m, "med_type")
    timestamp(m, "begntime")
    dise = inp.get("diseinfo") or []
    if not isinstance(dise, list) or not dise:
        raise TxError("诊断信息 diseinfo 不能为空")
    # A re-upload replaces the visit's diagnoses (allowed until settlement).
    ctx.s.execute(delete(Diagnosis).where(Diagnosis.mdtrt_id == v.mdtrt_id))
    for i, dd in enumerate(dise, 1):
        if not isinstance(dd, dict):
            raise TxError(f"第 {i} 条诊断格式错误")
        try:
            srt = int(text(dd, "diag_srt_no"))
        except ValueError:
            raise TxError(f"第 {i} 条诊断排序号 diag_srt_no 应为数字") from None
        ctx.s.add(Diagnosis(mdtrt_id=v.mdtrt_id, diag_type=text(dd, "diag_type"), diag_srt_no=srt,
                            diag_code=text(dd, "diag_code"), diag_name=text(dd, "diag_name"),
                            vali_flag=text(dd, "vali_flag", required=False, default="1")))
