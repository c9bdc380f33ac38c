"""The settlement receipt: a PDF for an 80 mm roll printer with an embedded CJK font."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

from settlement.money import yuan

from .crypto import mask_id, mask_name
from .domain import Person, RxItem, Settlement

PAPER_WIDTH = 80 * mm
MARGIN = 4 * mm
FONT = "ClinicCJK"
# TrueType-outline CJK fonts reportlab can embed (it cannot embed CFF/OTF such as Noto CJK).
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "C:/Windows/Fonts/simhei.ttf",
    "C:/Windows/Fonts/msyh.ttc",
)


class ReceiptError(Exception):
    def __init__(self, message: str, detail: str = ""):
        super().__init__(message)
        self.message = message
        self.detail = detail


def find_font() -> str:
    for path in filter(None, (os.environ.get("CLINIC_FONT"), *FONT_CANDIDATES)):
        if Path(path).exists():
            return path
    raise ReceiptError("找不到中文字体，无法生成收据。请安装文泉驿字体（fonts-wqy-microhei）。",
                       "no TrueType CJK font found; set CLINIC_FONT")


def _register_font() -> None:
    if FONT in pdfmetrics.getRegisteredFontNames():
        return
    path = find_font()
    kwargs = {"subfontIndex": 0} if path.lower().endswith(".ttc") else {}
    pdfmetrics.registerFont(TTFont(FONT, path, **kwargs))


@dataclass(frozen=True)
class ReceiptHeader:
    clinic_name: str
    fixmedins_code: str
    opter: str
    opter_name: str
    training: bool = False


def receipt_lines(header: ReceiptHeader, person: Person, items: tuple[RxItem, ...],
                  settlement: Settlement, *, reprint: bool = False,
                  self_pay: bool = False, revokes: str = "") -> list[tuple[str, str]]:
    """The receipt as (left, right) text rows: one source for the PDF and the thermal printer.

    `revokes`: the setl_id this slip revokes (2208); its amounts are the insurer's negated ones.
    """
    s = settlement.split
    rows: list[tuple[str, str]] = []
    if header.training:
        rows.append(("【培训】 本收据仅供培训，无效", ""))
    rows += [
        (header.clinic_name, ""),
        (("自费收费单（未经医保结算）" if self_pay else "医保结算撤销单" if revokes
          else "医保门诊结算单") + ("（补打）" if reprint else ""), ""),
        ("机构编码", header.fixmedins_code),
        ("结算时间", settlement.setl_time),
        ("姓名", mask_name(person.psn_name)),
        ("身份证号", mask_id(person.certno)),
        ("险种", person.insutype_name),
        ("-", ""),
    ]
    for it in items:
        rows.append((it.name, f"{yuan(it.amount_fen)}"))
        rows.append((f"  {it.qty}{it.unit} × {yuan(it.price_fen)}  {it.days}天", ""))
    rows += [
        ("-", ""),
        ("医疗费总额", yuan(s.medfee_sumamt)),
        ("统筹基金支付", yuan(s.fund_pay_sumamt)),
        ("个人账户支付", yuan(s.acct_pay)),
        ("现金支付", yuan(s.psn_cash_pay)),
        ("个人账户余额", yuan(s.balc)),
        ("-", ""),
        ("结算号", settlement.setl_id),
        ("报文号", settlement.msgid),
        ("操作员", f"{header.opter_name}（{header.opter}）"),
    ]
    if revokes:
        rows.insert(rows.index(("结算号", settlement.setl_id)) + 1, ("原结算号", revokes))
        rows.append((f"已退还现金 {yuan(-s.psn_cash_pay)} 元，", ""))
        rows.append((f"个人账户退回 {yuan(-s.acct_pay)} 元", ""))
    if self_pay:
        rows.append(("医保网络不通，本单全额自费，", ""))
        rows.append(("未使用医保基金和个人账户", ""))
    if header.training:
        rows.append(("【培训】 不产生任何真实费用", ""))
    return rows


def write_pdf(path: Path, rows: list[tuple[str, str]], *, training: bool = False) -> Path:
    _register_font()
    line_h, size = 4.6 * mm, 8.5
    height = MARGIN * 2 + line_h * (len(rows) + 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    c = canvas.Canvas(str(tmp), pagesize=(PAPER_WIDTH, height))
    c.setTitle("医保门诊结算单" + ("（培训）" if training else ""))
    y = height - MARGIN - line_h
    for left, right in rows:
        if left == "-":
            c.setDash(1, 2)
            c.line(MARGIN, y + line_h / 2, PAPER_WIDTH - MARGIN, y + line_h / 2)
            c.setDash()
        else:
            c.setFont(FONT, size + (1.5 if y > height - MARGIN - 3 * line_h else 0))
            c.drawString(MARGIN, y, left)
            if right:
                c.drawRightString(PAPER_WIDTH - MARGIN, y, right)
        y -= line_h
    c.showPage()
    c.save()
    os.replace(tmp, path)  # a half-written receipt never sits under the final name
    return path
