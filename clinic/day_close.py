"""The day's close: totals per insurance type against the insurer (3201), line by line (3202 with
the 9101/9102 file exchange), expected cash beside counted cash, then sign-out (9002).

Every difference is listed with what to do about it; the close is balanced only when nothing is.
"""
from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import asdict, dataclass, field
from datetime import date

from sqlalchemy import select

from settlement import messages
from settlement.money import yuan

from . import visit_state as vs
from .errors import CounterError, OutcomeUnknownProblem
from .models import DayClose, SignIn, Visit
from .recovery import recover
from .revocation import reverse
from .roles import require

INSUTYPES = ("310", "390", "340")


@dataclass(frozen=True)
class Difference:
    kind: str
    message: str          # what is wrong, in Chinese
    action: str           # what to do about it, in Chinese


@dataclass
class DayCloseReport:
    business_date: str
    balanced: bool = False
    totals: dict = field(default_factory=dict)        # insutype -> local totals (fen)
    insurer: dict = field(default_factory=dict)       # insutype -> (stmt_rslt, description)
    cash_expected: int = 0
    cash_counted: int | None = None
    self_pay_cash: int = 0
    differences: list[Difference] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    # The signed audit checkpoint (seq, head hash, signature) that leaves the PC with this report.
    audit_checkpoint: dict | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


def _settled_rows(counter, day: date):
    with counter.engine.connect() as conn:
        return conn.execute(select(Visit.__table__).where(
            Visit.business_date == day.isoformat())).all()


def local_totals(rows) -> dict[str, dict[str, int]]:
    totals: dict[str, dict[str, int]] = {t: {"medfee": 0, "fund": 0, "acct": 0, "cash": 0, "count": 0}
                                         for t in INSUTYPES}
    for r in rows:
        if r.state != vs.SETTLED or r.self_pay:
            continue  # revoked and revocation cancel out (refd_setl_flag 0); self-pay never reached the fund
        s = json.loads(r.split_json)
        t = totals.setdefault(r.insutype, {"medfee": 0, "fund": 0, "acct": 0, "cash": 0, "count": 0})
        t["medfee"] += s["medfee_sumamt"]
        t["fund"] += s["fund_pay_sumamt"]
        t["acct"] += s["acct_pay"]
        t["cash"] += s["psn_cash_pay"]
        t["count"] += 1
    return totals


def close_day(counter, day: date, cash_counted: int | None = None) -> DayCloseReport:
    require(counter.operator, "day_close")
    report = DayCloseReport(day.isoformat(), cash_counted=cash_counted)
    counter.audit.append("day_close_start", day.isoformat())
    _settle_the_unknown(counter, report)
    rows = _settled_rows(counter, day)
    report.totals = local_totals(rows)
    _reconcile_totals(counter, day, report)
    _reconcile_details(counter, day, rows, report)
    report.self_pay_cash = sum(json.loads(r.split_json)["psn_cash_pay"] for r in rows
                               if r.state == vs.SELF_PAID)
    report.cash_expected = sum(t["cash"] for t in report.totals.values()) + report.self_pay_cash
    if cash_counted is not None and cash_counted != report.cash_expected:
        gap = cash_counted - report.cash_expected
        report.differences.append(Difference(
            "cash", f"现金{'多' if gap > 0 else '少'} {yuan(abs(gap))} 元：应收 {yuan(report.cash_expected)}"
                    f" 元，实点 {yuan(cash_counted)} 元",
            "请重新清点现金，核对当天的自费收据和撤销记录；仍不符请在交班本上登记并报告"))
    report.balanced = not report.differences
    with counter.engine.begin() as conn:
        conn.execute(DayClose.__table__.insert().values(
            business_date=day.isoformat(), closed_at=counter.clock().isoformat(),
            opter=counter.operator.opter, balanced=report.balanced,
            cash_expected=report.cash_expected, cash_counted=cash_counted,
            report_json=report.to_json()))
    counter.audit.append("day_close", day.isoformat(), "balanced" if report.balanced else "unbalanced",
                         differences=len(report.differences), cash_expected=report.cash_expected)
    report.audit_checkpoint = counter.audit.checkpoint(counter.settings.keys_dir, "day_close")
    sign_out(counter)
    return report


def _settle_the_unknown(counter, report: DayCloseReport) -> None:
    """No settlement crosses the close unresolved: ask again, and reverse what stays unknown."""
    report.recovered = [n.message for n in recover(counter)]
    for visit_id in counter.unresolved_visits():
        try:
            reverse(counter, visit_id)
            report.recovered.append("一笔结果未知的结算已冲正（未扣费）")
        except (CounterError, OutcomeUnknownProblem) as exc:
            report.differences.append(Difference(
                "unknown", f"有一笔结算结果仍未知（{exc.message}）",
                "联网后重新日结；系统会再次核实或冲正，切勿让患者重复付款"))


def _reconcile_totals(counter, day: date, report: DayCloseReport) -> None:
    for insutype, t in report.totals.items():
        _, ans = counter.call("3201", None, messages.reconcile_totals(
            insutype, counter.settings.mdtrtarea_admvs, day, t["medfee"], t["fund"], t["acct"],
            t["count"]))
        rslt, dscr = messages.parse_reconcile_totals(ans.output)
        report.insurer[insutype] = (rslt, dscr)
        if rslt != "0":
            report.differences.append(Difference(
                "totals", f"{insutype} 险种总账不平：{dscr}",
                "查看下面的逐笔差异；逐笔都相符时请联系镇社区卫生服务中心医保窗口"))


def _detail_file(counter, rows) -> bytes:
    """The day's settlements as the insurer's detail file; built in memory, never kept on disk."""
    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\n")
    for r in rows:
        if r.state not in (vs.SETTLED, vs.REVOKED) or r.self_pay:
            continue
        s = json.loads(r.split_json)
        psn_no = counter.open_party(r.id)[0].psn_no
        w.writerow([r.setl_id, r.mdtrt_id, psn_no, r.setl_msgid, yuan(s["medfee_sumamt"]),
                    yuan(s["fund_pay_sumamt"]), yuan(s["acct_pay"]),
                    "1" if r.state == vs.REVOKED else "0"])
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("detail.txt", buf.getvalue())
    return out.getvalue()


def _reconcile_details(counter, day: date, rows, report: DayCloseReport) -> None:
    code = counter.settings.fixmedins_code
    filename = f"{code}_{day:%Y%m%d}_detail.zip"
    _, up = counter.call("9101", None, messages.file_upload(_detail_file(counter, rows), filename, code))
    qury = messages.parse_file_upload(up.output)
    totals = list(report.totals.values())
    _, ans = counter.call("3202", None, messages.reconcile_details(
        counter.settings.mdtrtarea_admvs, qury, day, sum(t["medfee"] for t in totals),
        sum(t["fund"] for t in totals), sum(t["cash"] for t in totals),
        sum(t["count"] for t in totals)))
    result_qury, result_name = messages.parse_reconcile_details(ans.output)
    _, dl = counter.call("9102", None, messages.file_download(result_qury, result_name, code))
    with zipfile.ZipFile(io.BytesIO(dl.raw)) as z:
        text = z.read("result.txt").decode("utf-8")
    for line in filter(None, text.splitlines()):
        rec = dict(zip(messages.DETAIL_RESULT_COLUMNS, line.split("\t")))
        if rec.get("stmt_rslt") == "0":
            continue
        report.differences.append(Difference(
            "detail", f"结算 {rec.get('setl_id') or '（无结算号）'} 对账不符：{rec.get('memo', '')}",
            "若本机有记录而中心没有：用“待核实”功能重新核实该笔；若中心有而本机没有："
            "请联系镇社区卫生服务中心核对，切勿自行补收或退款"))


def sign_out(counter) -> None:
    today = counter.clock().date().isoformat()
    with counter.engine.connect() as conn:
        row = conn.execute(select(SignIn.id, SignIn.sign_no).where(
            SignIn.business_date == today, SignIn.opter == counter.operator.opter,
            SignIn.signed_out_at.is_(None)).order_by(SignIn.id.desc())).first()
    if row is None:
        return
    counter.call("9002", None, messages.sign_out(counter.operator.opter, row.sign_no))
    with counter.engine.begin() as conn:
        conn.execute(SignIn.__table__.update().where(SignIn.id == row.id)
                     .values(signed_out_at=counter.clock().isoformat()))
    counter.forget_sign_in()
    counter.audit.append("sign_out", row.sign_no)
