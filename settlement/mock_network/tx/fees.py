"""2204 fee-line upload, 2205 fee-line deletion."""
from __future__ import annotations

from decimal import Decimal

from settlement.money import to_wire

from ..catalogue import chrgitm_type_for
from ..policy import LineIn, round_fen, split_line
from .common import (
    Ctx,
    TxError,
    amount,
    covered,
    decimal,
    diagnoses,
    handler,
    node,
    person,
    text,
    timestamp,
)
from .visit import open_visit


def _prop(d: Decimal) -> Decimal:
    return d.quantize(Decimal("0.01"))


@handler("2204", plain_sql=True)
def upload(ctx: Ctx, inp: dict) -> dict:
    lines = inp.get("feedetail") if isinstance(inp, dict) else None
    if not isinstance(lines, list) or not lines:
        raise TxError("费用明细 feedetail 不能为空")
    seen: dict[str, set[str]] = {}
    # Each line names its person and visit; usually all lines name the same ones, read once.
    people: dict = {}
    visits: dict = {}
    codes: dict[str, list[str]] = {}
    rows = []
    result = []
    for i, d in enumerate(lines, 1):
        if not isinstance(d, dict):
            raise TxError(f"第 {i} 条费用明细格式错误")
        psn_no = text(d, "psn_no")
        p = people.get(psn_no) or people.setdefault(psn_no, person(ctx, psn_no))
        key = (text(d, "mdtrt_id"), p.psn_no)
        v = visits.get(key) or visits.setdefault(key, open_visit(ctx, *key))
        if v.mdtrt_id not in seen:
            seen[v.mdtrt_id] = {r[0] for r in ctx.q(
                "SELECT feedetl_sn FROM fee_line WHERE mdtrt_id = %s", (v.mdtrt_id,)).fetchall()}
        sn = text(d, "feedetl_sn")
        if sn in seen[v.mdtrt_id]:
            raise TxError(f"费用明细流水号 {sn} 在本次就诊中已存在")
        seen[v.mdtrt_id].add(sn)
        cnt = decimal(d, "cnt", 4, positive=True)
        pric = decimal(d, "pric", 6)
        fen = amount(d, "det_item_fee_sumamt")
        if round_fen(cnt * pric * 100) != fen:
            raise TxError(f"第 {i} 条（流水号 {sn}）明细金额 {to_wire(fen)} 不等于数量×单价 "
                          f"{to_wire(round_fen(cnt * pric * 100))}")
        timestamp(d, "fee_ocur_time")
        code = text(d, "med_list_codg")
        item = ctx.catalogue.get(code)
        lv = item.chrgitm_lv if item else None
        if item and item.restrict_dx and v.mdtrt_id not in codes:
            codes[v.mdtrt_id] = diagnoses(ctx, v.mdtrt_id)
        if item and not covered(item.restrict_dx, codes.get(v.mdtrt_id, [])):
            lv = None  # outside the restricted payment scope: self-paid unless a diagnosis matches
            ctx.warnings.append(f"流水号 {sn}（{item.name}）限定支付，诊断不符合 {'/'.join(item.restrict_dx)}，按自费计算")
        line = LineIn(sumamt_fen=fen, cnt=cnt, chrgitm_lv=lv,
                      ceiling_fen=item.ceiling_fen if item else None,
                      consultation=bool(item and item.consultation))
        sp = split_line(line, ctx.policy)
        rows.append((v.mdtrt_id, sn, text(d, "chrg_bchno"), code,
                     text(d, "medins_list_codg", required=False), str(cnt), str(pric), fen,
                     item.chrgitm_lv if item else None, line.ceiling_fen,
                     ";".join(item.restrict_dx) if item else "",
                     ctx.db.boolean(line.consultation), ctx.msgid))
        result.append({
            "feedetl_sn": sn, "det_item_fee_sumamt": to_wire(fen), "cnt": cnt, "pric": pric,
            "pric_uplmt_amt": to_wire(item.ceiling_fen) if item and item.ceiling_fen is not None else None,
            "selfpay_prop": _prop(sp.selfpay_prop), "fulamt_ownpay_amt": to_wire(sp.fulamt_ownpay_fen),
            "overlmt_amt": to_wire(sp.overlmt_fen), "preselfpay_amt": to_wire(sp.preselfpay_fen),
            "inscp_scp_amt": to_wire(sp.inscp_fen), "chrgitm_lv": item.chrgitm_lv if item else "03",
            "med_chrgitm_type": item.med_chrgitm_type if item else chrgitm_type_for(code),
            "lmt_used_flag": item.lmt_used_flag if item else "0",
        })
    ctx.cur.executemany(ctx.db.q(
        "INSERT INTO fee_line (mdtrt_id, feedetl_sn, chrg_bchno, med_list_codg, medins_list_codg, "
        "cnt, pric, sumamt_fen, chrgitm_lv, ceiling_fen, restrict_dx, consultation, msgid) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"), rows)
    return {"result": result}


@handler("2205")
def remove(ctx: Ctx, inp: dict) -> None:
    d = node(inp, "data")
    p = person(ctx, text(d, "psn_no"))
    v = open_visit(ctx, text(d, "mdtrt_id"), p.psn_no)
    bch = text(d, "chrg_bchno")
    sql = "DELETE FROM fee_line WHERE mdtrt_id = %s AND setl_id IS NULL"
    if bch != "0000":  # "0000" = every unsettled line of the visit
        n = ctx.q(sql + " AND chrg_bchno = %s", (v.mdtrt_id, bch)).rowcount
    else:
        n = ctx.q(sql, (v.mdtrt_id,)).rowcount
    if not n:
        raise TxError(f"收费批次 {bch} 没有可撤销的费用明细")
