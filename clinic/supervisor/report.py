"""`clinic supervisor report`: the period's PDF (charts + findings) and a CSV beside it."""
from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.charts.lineplots import LinePlot
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import (
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from settlement.money import yuan

from ..receipt import FONT, _register_font
from .rules import Finding, Rule, evaluate, load_rules, settlements
from .store import Store

HISTORY_DAYS = 120          # events before the period read as history (repeat prescribing)
PALETTE = [colors.HexColor(c) for c in ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                        "#8c564b", "#e377c2", "#7f7f7f")]
MAX_TABLE_ROWS = 400


@dataclass
class ReportData:
    first_day: str
    last_day: str
    rules: list[Rule]
    findings: list[Finding]
    per_clinic_day: dict[str, dict[str, int]]      # clinic -> day -> settlements
    fund_per_group: dict[str, int]                  # ATC group -> fen
    clinics: list[dict]
    integrity: dict[str, str]                       # clinic -> store verification message


def gather(store: Store, first_day: str | None, last_day: str | None,
           rules_path: Path | None = None) -> ReportData:
    summary = store.summary()
    if not first_day:
        first_day = min((s["first_day"] for s in summary), default=date.today().isoformat())
    if not last_day:
        last_day = max((s["last_day"] for s in summary), default=first_day)
    since = (date.fromisoformat(first_day) - timedelta(days=HISTORY_DAYS)).isoformat()
    events = store.events(since, last_day, ("settle", "revoke", "reverse", "formulary_override"))
    rules = load_rules(rules_path)
    findings = evaluate(events, rules, first_day, last_day)
    per: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    fund: dict[str, int] = defaultdict(int)
    for s in settlements(events):
        if not (first_day <= s.day <= last_day):
            continue
        per[s.clinic][s.day] += 1
        amounts = [it["qty"] * it.get("price_fen", 0) for it in s.items]
        total = sum(amounts)
        for it, a in zip(s.items, amounts):
            if total:
                fund[it.get("atc") or "未分组"] += s.fund * a // total
    integrity = {}
    for c in summary:
        r = store.verify_clinic(c["clinic"])
        integrity[c["clinic"]] = {"ok": "完整（签名检查点覆盖）", "unproven": "未见改动，末尾完整性未证实",
                                  "damaged": f"有问题：{r.message}"}[r.status]
    return ReportData(first_day, last_day, rules, findings, per, fund, summary, integrity)


def _style(size=9, leading=None):
    return ParagraphStyle("cjk", fontName=FONT, fontSize=size, leading=leading or size * 1.35)


def _chart_settlements(data: ReportData) -> Drawing:
    d0 = date.fromisoformat(data.first_day)
    ndays = (date.fromisoformat(data.last_day) - d0).days + 1
    dw = Drawing(170 * mm, 75 * mm)
    lp = LinePlot()
    lp.x, lp.y, lp.width, lp.height = 12 * mm, 12 * mm, 120 * mm, 55 * mm
    clinics = sorted(data.per_clinic_day)
    lp.data = [[(i, data.per_clinic_day[c].get((d0 + timedelta(days=i)).isoformat(), 0))
                for i in range(ndays)] for c in clinics] or [[(0, 0)]]
    for i, _ in enumerate(clinics):
        lp.lines[i].strokeColor = PALETTE[i % len(PALETTE)]
        lp.lines[i].strokeWidth = 0.8
    lp.xValueAxis.valueMin, lp.xValueAxis.valueMax = 0, max(ndays - 1, 1)
    step = max(1, ndays // 6)
    lp.xValueAxis.valueSteps = list(range(0, ndays, step))
    lp.xValueAxis.labelTextFormat = lambda v: (d0 + timedelta(days=int(v))).strftime("%m-%d")
    lp.xValueAxis.labels.fontName = lp.yValueAxis.labels.fontName = FONT
    lp.xValueAxis.labels.fontSize = lp.yValueAxis.labels.fontSize = 6
    lp.yValueAxis.valueMin = 0
    dw.add(lp)
    lg = Legend()
    lg.x, lg.y, lg.fontName, lg.fontSize = 137 * mm, 60 * mm, FONT, 7
    lg.columnMaximum, lg.dx, lg.dy = 10, 6, 6
    lg.colorNamePairs = [(PALETTE[i % len(PALETTE)], c) for i, c in enumerate(clinics)]
    dw.add(lg)
    dw.add(String(12 * mm, 70 * mm, "各卫生室每日结算笔数", fontName=FONT, fontSize=9))
    return dw


def _bar(title: str, labels: list[str], values: list[float], fmt=None) -> Drawing:
    dw = Drawing(170 * mm, 75 * mm)
    bc = VerticalBarChart()
    bc.x, bc.y, bc.width, bc.height = 15 * mm, 18 * mm, 145 * mm, 48 * mm
    bc.data = [values or [0]]
    bc.categoryAxis.categoryNames = labels or ["-"]
    bc.categoryAxis.labels.fontName = bc.valueAxis.labels.fontName = FONT
    bc.categoryAxis.labels.fontSize = 6
    bc.categoryAxis.labels.angle = 30
    bc.categoryAxis.labels.boxAnchor = "ne"
    bc.valueAxis.labels.fontSize = 6
    bc.valueAxis.valueMin = 0
    if fmt:
        bc.valueAxis.labelTextFormat = fmt
    bc.bars[0].fillColor = PALETTE[0]
    dw.add(bc)
    dw.add(String(15 * mm, 70 * mm, title, fontName=FONT, fontSize=9))
    return dw


def write_report(store: Store, out: Path, first_day: str | None = None,
                 last_day: str | None = None, rules_path: Path | None = None) -> tuple[Path, Path, ReportData]:
    _register_font()
    data = gather(store, first_day, last_day, rules_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    csv_path = out.with_suffix(".csv")
    titles = {r.id: r.title for r in data.rules}
    by_rule = defaultdict(int)
    for f in data.findings:
        by_rule[f.rule] += 1

    h1, body, small = _style(15, 20), _style(9), _style(7)
    story = [Paragraph("村卫生室医保审计报告（镇卫生院）", h1),
             Paragraph(f"期间 {data.first_day} 至 {data.last_day}；卫生室 {len(data.clinics)} 个；"
                       f"异常 {len(data.findings)} 条", body), Spacer(1, 4 * mm)]
    rows = [["卫生室", "名称", "事件数", "序号范围", "最后检查点", "审计链核验"]]
    names = {c["clinic"]: c["name"] for c in store.clinics()}
    for c in data.clinics:
        rows.append([c["clinic"], names.get(c["clinic"], ""), str(c["events"]),
                     f"{c['first_seq']}–{c['last_seq']}", str(c["last_checkpoint"] or "-"),
                     Paragraph(data.integrity[c["clinic"]], small)])
    story += [_table(rows, [28 * mm, 38 * mm, 16 * mm, 24 * mm, 18 * mm, 50 * mm]),
              Spacer(1, 5 * mm), _chart_settlements(data)]
    groups = sorted(data.fund_per_group.items(), key=lambda kv: -kv[1])[:14]
    story.append(_bar("按药品分组（ATC 四级）的统筹基金支付（元）", [g for g, _ in groups],
                      [v / 100 for _, v in groups], fmt=lambda v: f"{v:.0f}"))
    story.append(_bar("各异常规则的条数", [f"{r.id} {r.title[:6]}" for r in data.rules],
                      [by_rule.get(r.id, 0) for r in data.rules], fmt=lambda v: f"{v:.0f}"))
    story += [PageBreak(), Paragraph("异常规则与阈值", h1)]
    rrows = [["规则", "名称", "条数", "说明与阈值"]]
    for r in data.rules:
        params = "；".join(f"{k}={v}" for k, v in r.params.items() if k != "chronic_dx")
        rrows.append([r.id, Paragraph(r.title, small), str(by_rule.get(r.id, 0)),
                      Paragraph(f"{r.description}（{params}）", small)])
    story += [_table(rrows, [12 * mm, 34 * mm, 12 * mm, 116 * mm]), Spacer(1, 5 * mm),
              Paragraph("异常明细" + (f"（前 {MAX_TABLE_ROWS} 条，全部见 CSV）"
                                   if len(data.findings) > MAX_TABLE_ROWS else ""), h1)]
    frows = [["规则", "卫生室", "日期", "操作员", "对象", "值", "阈值", "说明"]]
    for f in data.findings[:MAX_TABLE_ROWS]:
        frows.append([f.rule, Paragraph(f.clinic, small), f.day, f.operator,
                      Paragraph(f.subject[:36], small), Paragraph(f.value, small), f.threshold,
                      Paragraph(f.detail[:80], small)])
    story.append(_table(frows, [11 * mm, 26 * mm, 18 * mm, 14 * mm, 32 * mm, 18 * mm, 16 * mm,
                                40 * mm]))
    doc = SimpleDocTemplate(str(out), pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm,
                            topMargin=15 * mm, bottomMargin=15 * mm,
                            title="村卫生室医保审计报告", author="clinic supervisor report")
    doc.build(story)

    with open(csv_path, "w", newline="", encoding="utf-8-sig") as fh:
        w = csv.writer(fh)
        w.writerow(["section", "rule", "title", "clinic", "day", "operator", "subject", "value",
                    "threshold", "detail"])
        for f in data.findings:
            w.writerow(["finding", f.rule, titles.get(f.rule, ""), f.clinic, f.day, f.operator,
                        f.subject, f.value, f.threshold, f.detail])
        for clinic, days in sorted(data.per_clinic_day.items()):
            for day, n in sorted(days.items()):
                w.writerow(["settlements", "", "", clinic, day, "", "", n, "", ""])
        for g, v in sorted(data.fund_per_group.items()):
            w.writerow(["fund_per_group", "", "", "", "", "", g, yuan(v), "", ""])
        for r in data.rules:
            w.writerow(["rule_count", r.id, r.title, "", "", "", "", by_rule.get(r.id, 0), "", ""])
    return out, csv_path, data


def _table(rows, widths) -> Table:
    t = Table(rows, colWidths=widths, repeatRows=1)
    t.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, -1), FONT), ("FONTSIZE", (0, 0), (-1, -1), 7),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef7")),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]))
    return t
