"""1101 person information (人员信息获取)."""
from __future__ import annotations

from settlement.money import to_wire

from ..voucher_hub import VoucherRefusal, check_token
from .common import (
    PERSON_COLS,
    REGION,
    Ctx,
    PersonRow,
    TxError,
    age_on,
    handler,
    node,
    text,
    ymd,
)

CERT_TYPES = {"01": "医保电子凭证", "02": "居民身份证", "03": "社会保障卡"}


# The person and their account in one statement (1101 reads, it locks nothing).
_BY = (f"SELECT {', '.join('p.' + c.strip() for c in PERSON_COLS.split(','))}, a.balc_fen "
       "FROM person p LEFT JOIN account a ON a.psn_no = p.psn_no WHERE p.{} = %s")
BY_CARD, BY_CERTNO, BY_PSN = _BY.format("card_no"), _BY.format("certno"), _BY.format("psn_no")


def _lookup(ctx: Ctx, sql: str, key: str) -> tuple[PersonRow, int] | None:
    row = ctx.one(sql, (key,))
    return (PersonRow(row[:-1]), row[-1] or 0) if row else None


def find(ctx: Ctx, d: dict) -> tuple[PersonRow, int]:
    """The person the certificate names, and their account balance (fen)."""
    cert_type = text(d, "mdtrt_cert_type")
    cert_no = text(d, "mdtrt_cert_no")
    if cert_type == "03":
        found = _lookup(ctx, BY_CARD, cert_no)
        if found is None:
            raise TxError("未查询到该社会保障卡的参保信息，请核对卡号或改用身份证号查询")
        p = found[0]
        card_sn = text(d, "card_sn", required=False)
        if card_sn and card_sn.upper() != p.card_sn:
            raise TxError("社会保障卡识别码与卡号不符，该卡可能已挂失或补换，请使用新卡")
        if p.card_expiry_date < ctx.now.date():
            raise TxError(f"社会保障卡已于 {ymd(p.card_expiry_date)} 过期，请改用身份证号或医保电子凭证")
    elif cert_type == "02":
        found = _lookup(ctx, BY_CERTNO, cert_no.upper())
        if found is None:
            raise TxError("未查询到该身份证号的参保信息，请核对号码")
    elif cert_type == "01":
        # The voucher hub's ecToken (voucher_hub.py): signed, short-lived, checked here.
        try:
            psn_no = check_token(cert_no, ctx.now)
        except VoucherRefusal as exc:
            raise TxError(exc.message) from None
        found = _lookup(ctx, BY_PSN, psn_no)
        if found is None:
            raise TxError("医保电子凭证无效，请患者打开医保电子凭证后重新扫码")
    else:
        raise TxError(f"就诊凭证类型 {cert_type} 无效，应为 01、02 或 03")
    p = found[0]
    certno = text(d, "certno", required=False)
    if certno and certno.upper() != p.certno:
        raise TxError("证件号码与就诊凭证对应的参保人不符")
    name = text(d, "psn_name", required=False)
    if name and name != p.psn_name:
        raise TxError("姓名与参保信息不符，请核对")
    return found


@handler("1101", plain_sql=True)
def person_info(ctx: Ctx, inp: dict) -> dict:
    p, balc = find(ctx, node(inp, "data"))
    return {
        "baseinfo": {
            "psn_no": p.psn_no, "psn_cert_type": "01", "certno": p.certno,
            "psn_name": p.psn_name, "gend": p.gend, "naty": p.naty, "brdy": ymd(p.brdy),
            "age": age_on(p.brdy, ctx.now.date()),
        },
        "insuinfo": [{
            "balc": to_wire(balc), "insutype": p.insutype,
            "psn_type": p.psn_type, "psn_insu_stas": p.insu_state,
            "psn_insu_date": ymd(p.insu_date),
            "paus_insu_date": None if p.insu_state == "1" else f"{ctx.now.year}-01-01",
            "insuplc_admdvs": REGION, "emp_name": p.emp_name,
        }],
        "idetinfo": [],
    }
