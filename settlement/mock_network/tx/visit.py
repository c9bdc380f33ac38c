"""2201 registration, 2202 cancel registration, 2203 visit and diagnosis upload."""
from __future__ import annotations

from dataclasses import dataclass

from .common import Ctx, TxError, check_insured, handler, node, person, text, timestamp


@dataclass
class VisitRow:
    mdtrt_id: str
    psn_no: str
    fixmedins_code: str
    insutype: str
    ipt_otp_no: str
    med_type: str
    status: str


VISIT_COLS = "mdtrt_id, psn_no, fixmedins_code, insutype, ipt_otp_no, med_type, status"


def get_visit(ctx: Ctx, mdtrt_id: str) -> VisitRow | None:
    row = ctx.one(f"SELECT {VISIT_COLS} FROM visit WHERE mdtrt_id = %s", (mdtrt_id,))
    return VisitRow(*row) if row else None


def open_visit(ctx: Ctx, mdtrt_id: str, psn_no: str) -> VisitRow:
    """A visit of this institution and person that can still take data."""
    v = get_visit(ctx, mdtrt_id)
    if v is None or v.fixmedins_code != ctx.fixmedins_code:
        raise TxError(f"就诊ID {mdtrt_id} 不存在")
    if v.psn_no != psn_no:
        raise TxError("就诊ID与人员编号不符")
    if v.status == "cancelled":
        raise TxError("该挂号已撤销，请重新挂号")
    if v.status == "settled":
        raise TxError("该就诊已结算，不能再修改；如需更正请先撤销结算")
    return v


@handler("2201", plain_sql=True)
def register(ctx: Ctx, inp: dict) -> dict:
    d = node(inp, "data")
    p = person(ctx, text(d, "psn_no"))
    check_insured(p)
    insutype = text(d, "insutype")
    if insutype != p.insutype:
        raise TxError(f"险种类型 {insutype} 与该人员参保险种 {p.insutype} 不符")
    ipt_otp_no = text(d, "ipt_otp_no")
    if ctx.one("SELECT 1 FROM visit WHERE fixmedins_code = %s AND ipt_otp_no = %s",
               (ctx.fixmedins_code, ipt_otp_no)) is not None:
        raise TxError(f"门诊号 {ipt_otp_no} 已挂号，不能重复挂号")
    begntime = timestamp(d, "begntime")
    cert_type = text(d, "mdtrt_cert_type")
    text(d, "mdtrt_cert_no")
    mdtrt_id = ctx.new_id("mdtrt")
    ctx.q("INSERT INTO visit (mdtrt_id, psn_no, fixmedins_code, insutype, ipt_otp_no, begntime, "
          "mdtrt_cert_type, med_type, dr_name, dept_name, status, msgid) "
          "VALUES (%s, %s, %s, %s, %s, %s, %s, '11', %s, %s, 'registered', %s)",
          (mdtrt_id, p.psn_no, ctx.fixmedins_code, insutype, ipt_otp_no, ctx.db.dt(begntime),
           cert_type, text(d, "dr_name", required=False), text(d, "dept_name", required=False),
           ctx.msgid))
    return {"data": {"mdtrt_id": mdtrt_id, "psn_no": p.psn_no, "ipt_otp_no": ipt_otp_no}}


@handler("2202")
def cancel_registration(ctx: Ctx, inp: dict) -> None:
    d = node(inp, "data")
    p = person(ctx, text(d, "psn_no"))
    v = open_visit(ctx, text(d, "mdtrt_id"), p.psn_no)
    if text(d, "ipt_otp_no") != v.ipt_otp_no:
        raise TxError("门诊号与就诊ID不符")
    ctx.q("DELETE FROM fee_line WHERE mdtrt_id = %s AND setl_id IS NULL", (v.mdtrt_id,))
    ctx.q("UPDATE visit SET status = 'cancelled' WHERE mdtrt_id = %s", (v.mdtrt_id,))


@handler("2203", plain_sql=True)
def visit_info(ctx: Ctx, inp: dict) -> None:
    m = node(inp, "mdtrtinfo")
    p = person(ctx, text(m, "psn_no"))
    v = open_visit(ctx, text(m, "mdtrt_id"), p.psn_no)
    med_type = text(m, "med_type")
    timestamp(m, "begntime")
    dise = inp.get("diseinfo") or []
    if not isinstance(dise, list) or not dise:
        raise TxError("诊断信息 diseinfo 不能为空")
    rows = []
    for i, dd in enumerate(dise, 1):
        if not isinstance(dd, dict):
            raise TxError(f"第 {i} 条诊断格式错误")
        try:
            srt = int(text(dd, "diag_srt_no"))
        except ValueError:
            raise TxError(f"第 {i} 条诊断排序号 diag_srt_no 应为数字") from None
        rows.append((v.mdtrt_id, text(dd, "diag_type"), srt, text(dd, "diag_code"),
                     text(dd, "diag_name"), text(dd, "vali_flag", required=False, default="1")))
    ctx.q("UPDATE visit SET med_type = %s WHERE mdtrt_id = %s", (med_type, v.mdtrt_id))
    # A re-upload replaces the visit's diagnoses (allowed until settlement).
    ctx.q("DELETE FROM diagnosis WHERE mdtrt_id = %s", (v.mdtrt_id,))
    ctx.cur.executemany(ctx.db.q(
        "INSERT INTO diagnosis (mdtrt_id, diag_type, diag_srt_no, diag_code, diag_name, vali_flag) "
        "VALUES (%s, %s, %s, %s, %s, %s)"), rows)
