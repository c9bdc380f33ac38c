"""`clinic`: the command line. Each command is a thin shell over the same library the desk app uses."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict, replace

from settlement.money import yuan

from .config import (
    Settings,
    TrainingIsolationError,
    assert_training_isolated,
    load_settings,
)
from .errors import CardProblem, CounterError
from .roles import LOGIN_IN_WINDOW, NO_LOGIN, SELF_LOGIN

log = logging.getLogger("clinic")

EXIT_OK, EXIT_BLOCKED, EXIT_REFUSED, EXIT_CARD, EXIT_NETWORK, EXIT_NOT_ALLOWED = 0, 2, 3, 4, 5, 6


def _setup_logging(settings: Settings, verbose: bool = False) -> None:
    settings.log_path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(settings.log_path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)


def parse_rx(spec: str) -> list[tuple[str, int, int | None]]:
    """'DRUG:QTY[:DAYS],...' -> [(term, qty, days|None)]."""
    out = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        bits = part.split(":")
        if len(bits) not in (2, 3):
            raise CounterError(f"处方写法不对：“{part}”，应为 药品:数量[:天数]", f"bad rx part {part!r}")
        try:
            qty = int(bits[1])
            days = int(bits[2]) if len(bits) == 3 else None
        except ValueError:
            raise CounterError(f"数量和天数须为整数：“{part}”", f"bad number in {part!r}") from None
        if qty <= 0 or (days is not None and days <= 0):
            raise CounterError(f"数量和天数须大于 0：“{part}”", f"non-positive in {part!r}")
        out.append((bits[0], qty, days))
    if not out:
        raise CounterError("处方为空", "empty rx")
    return out


def parse_overrides(values: list[str]) -> dict[str, str]:
    out = {}
    for v in values:
        rule, _, reason = v.partition(":")
        if not reason.strip():
            raise CounterError(f"放行警告须写明理由：{v}", "override without reason")
        out[rule.strip()] = reason.strip()
    return out


# ---- commands ------------------------------------------------------------------------

def cmd_settle(args, settings: Settings) -> int:
    spec = parse_rx(args.rx)
    overrides = parse_overrides(args.override or [])
    counter = _counter(args, settings)
    result = None
    try:
        _report_recovery(counter)
        if args.id_number:
            cred = counter.credential_from_id_number(args.id_number)
        elif args.qr:
            from .voucher import credential_from_voucher
            cred = credential_from_voucher(counter, args.qr)
        else:
            cred = counter.credential_from_card(counter.read_card(_reader_url(args, settings)))
        result = counter.run_visit(cred, spec, diagnosis=args.diagnosis, overrides=overrides,
                                   emergency=args.emergency)
        code = EXIT_OK if result.status == "settled" else EXIT_BLOCKED
    except CounterError as exc:
        log.warning("settle stopped: %s (%s)", type(exc).__name__, exc.detail)
        _print_result(args, None, exc)
        return exc.exit_code
    finally:
        counter.close()
    _print_result(args, result, None)
    return code


def _reader_url(args, settings: Settings) -> str:
    """--reader, else the configured one, else the one remembered by `clinic reader use`."""
    from .cli_reader import remembered_reader
    url = args.reader or settings.reader_url or remembered_reader(settings)
    if not url:
        raise CardProblem("还没有设置读卡器。请用“clinic reader use 串口”记住本机的读卡器，"
                          "或在命令里写 --reader", "no reader configured")
    return url


def _report_recovery(counter) -> None:
    """Before the counter opens: resolve what a crash left in flight and say what happened."""
    from .recovery import recover
    for note in recover(counter):
        print(f"【上次中断的业务】{note.message}", file=sys.stderr)


def _print_result(args, result, error: CounterError | None) -> None:
    if args.json:
        out: dict = {"status": error.status, "message": error.message} if error else {}
        if result is not None:
            s = result.settlement
            split = s.split if s else result.presettlement
            out.update({
                "status": result.status, "message": result.message,
                "psn_name": result.person.psn_name if result.person else None,
                "msgid": s.msgid if s else None, "setl_id": s.setl_id if s else None,
                "receipt": s.receipt_path if s else None,
                "verdicts": [asdict(v) for v in result.verdicts],
            })
            for f in ("medfee_sumamt", "fund_pay_sumamt", "acct_pay", "psn_cash_pay", "balc"):
                out[f] = yuan(getattr(split, f)) if split else None
            out["amounts_fen"] = asdict(split) if split else None
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return
    if error is not None:
        print(f"未完成：{error.message}", file=sys.stderr)
        return
    for v in result.verdicts:
        mark = {"pass": "✓", "warn": "!", "block": "✗"}.get(v.outcome, "?")
        print(f"  {mark} [{v.rule_id}] {v.message}")
    if result.status != "settled":
        print(f"未结算：{result.message}")
        return
    s = result.settlement
    print(f"结算成功  患者 {result.person.psn_name}  结算号 {s.setl_id}")
    print(f"  医疗费总额 {yuan(s.split.medfee_sumamt)}  统筹基金 {yuan(s.split.fund_pay_sumamt)}  "
          f"个人账户 {yuan(s.split.acct_pay)}  现金 {yuan(s.split.psn_cash_pay)}")
    print(f"  收据：{s.receipt_path}")


def _counter(args, settings: Settings):
    """The counter for the session main() logged in (role already checked for the command)."""
    from .counter import Counter
    return Counter(settings, args.session)


def cmd_recover(args, settings: Settings) -> int:
    from .recovery import recover
    counter = _counter(args, settings)
    try:
        notes = recover(counter)
        left = counter.unresolved_visits()
    finally:
        counter.close()
    if args.json:
        print(json.dumps({"notes": [asdict(n) for n in notes], "unresolved": left},
                         ensure_ascii=False, indent=2))
    else:
        for n in notes:
            print(f"{n.visit_id[:8]}  {n.before} -> {n.after}  {n.message}")
        print("没有待核实的结算" if not left else f"仍有 {len(left)} 笔结算待核实")
    return 0 if not left else EXIT_NETWORK


def cmd_visit_list(args, settings: Settings) -> int:
    from sqlalchemy import select, text

    from . import visit_state as vs
    from .models import Visit
    counter = _counter(args, settings)
    try:
        q = select(Visit.id, Visit.created_at, Visit.state, Visit.setl_id, Visit.split_json)
        if args.unresolved:
            q = q.where(text(vs.UNRESOLVED_SQL))  # literals, as ix_visit_unresolved has them
        if args.id_number:  # found by its keyed hash: the ID number itself is stored nowhere
            certno = counter.credential_from_id_number(args.id_number).certno
            q = q.where(Visit.certno_ref == counter.cipher.keyed_hash(certno))
        with counter.engine.connect() as conn:
            rows = conn.execute(q.order_by(Visit.created_at)).all()
    finally:
        counter.close()
    if args.json:
        print(json.dumps([{"visit_id": r.id, "created_at": r.created_at, "state": r.state,
                           "setl_id": r.setl_id,
                           "medfee_sumamt": json.loads(r.split_json)["medfee_sumamt"] if r.split_json else None}
                          for r in rows], ensure_ascii=False, indent=2))
    else:
        for r in rows:
            print(f"{r.id}  {r.created_at[:19]}  {vs.LABELS.get(r.state, r.state):6}  {r.setl_id or ''}")
    return 0


def cmd_visit_revoke(args, settings: Settings) -> int:
    from .revocation import revoke
    counter = _counter(args, settings)
    try:
        info, slip = revoke(counter, args.visit_id, args.reason)
    finally:
        counter.close()
    print(f"已撤销，撤销结算号 {info.setl_id}，退还现金 {yuan(-info.split.psn_cash_pay)} 元，"
          f"个人账户退回 {yuan(-info.split.acct_pay)} 元")
    print(f"撤销单：{slip}")
    return 0


def cmd_visit_reverse(args, settings: Settings) -> int:
    from .revocation import reverse
    counter = _counter(args, settings)
    try:
        reverse(counter, args.visit_id)
    finally:
        counter.close()
    print("已冲正，该笔未收取医保费用")
    return 0


def cmd_visit_reprint(args, settings: Settings) -> int:
    counter = _counter(args, settings)
    try:
        path = counter.reprint_receipt(args.visit_id)
    finally:
        counter.close()
    print(f"收据已补打：{path}")
    return 0


def cmd_self_pay(args, settings: Settings) -> int:
    from .self_pay import take_self_pay
    counter = _counter(args, settings)
    try:
        card = counter.read_card(args.reader) if args.reader else None
        s = take_self_pay(counter, counter.resolve_items(parse_rx(args.rx)), card)
    finally:
        counter.close()
    print(f"自费收费 {yuan(s.split.psn_cash_pay)} 元（未经医保结算）  收据：{s.receipt_path}")
    return 0


def cmd_day_close(args, settings: Settings) -> int:
    from datetime import date

    from settlement.money import to_fen

    from .day_close import close_day
    counter = _counter(args, settings)
    try:
        day = date.fromisoformat(args.date) if args.date else counter.clock().date()
        counted = to_fen(args.cash_counted) if args.cash_counted is not None else None
        report = close_day(counter, day, counted)
    finally:
        counter.close()
    if args.json:
        print(report.to_json())
    else:
        print(f"{report.business_date} 日结：{'平' if report.balanced else '不平'}")
        for insutype, t in report.totals.items():
            if t["count"]:
                print(f"  {insutype}：{t['count']} 笔，医疗费 {yuan(t['medfee'])}，基金 {yuan(t['fund'])}，"
                      f"个人账户 {yuan(t['acct'])}，现金 {yuan(t['cash'])}")
        print(f"  应收现金 {yuan(report.cash_expected)} 元（含自费 {yuan(report.self_pay_cash)} 元）"
              + (f"，实点 {yuan(report.cash_counted)} 元" if report.cash_counted is not None else ""))
        for note in report.recovered:
            print(f"  · {note}")
        for d in report.differences:
            print(f"  ✗ {d.message}\n    处理：{d.action}")
    return 0 if report.balanced else 1


def cmd_desk(args, settings: Settings) -> int:
    from .gui.app import run_desk
    if args.network:  # a real network: the reader named, configured or remembered
        return run_desk(settings, reader_url=_reader_url(args, settings))
    # No network given: bring up the simulator and a virtual reader on embedded defaults.
    from .services import counter_services, simulator_dir
    with counter_services(simulator_dir(settings)) as (network_url, reader_path):
        print(f"模拟医保中心 {network_url}，虚拟读卡器 {reader_path}", flush=True)
        return run_desk(replace(settings, network_url=network_url), reader_url=reader_path)


def cmd_demo(args, settings: Settings) -> int:
    from .demo import run_demo
    return run_demo(settings)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="clinic", description="村卫生室医保结算客户端")
    p.add_argument("--training", action="store_true", help="培训模式：独立数据目录，只连本机模拟医保")
    p.add_argument("--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("settle", help="读卡并结算一张处方")
    s.add_argument("--reader", help="读卡器串口或 pyserial URL")
    s.add_argument("--id-number", help="不读卡，输入身份证号（mdtrt_cert_type 02）")
    s.add_argument("--qr", help="不读卡，扫码得到的医保电子凭证二维码内容（mdtrt_cert_type 01）")
    s.add_argument("--rx", required=True, help='药品:数量[:天数],... 例如 "xbdp:1:7"')
    s.add_argument("--diagnosis", default="I10")
    s.add_argument("--emergency", action="store_true")
    s.add_argument("--override", action="append", metavar="RULE_ID:REASON")
    s.add_argument("--network", help="医保平台地址，如 http://127.0.0.1:8080")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_settle, needs="settle")

    dk = sub.add_parser("desk", help="柜台窗口")
    dk.add_argument("--reader")
    dk.add_argument("--network")
    dk.set_defaults(func=cmd_desk, needs=LOGIN_IN_WINDOW)

    rc = sub.add_parser("recover", help="核实中断或结果未知的结算")
    rc.add_argument("--json", action="store_true")
    rc.set_defaults(func=cmd_recover, needs="settle")

    vi = sub.add_parser("visit", help="就诊记录").add_subparsers(dest="sub", required=True)
    vl = vi.add_parser("list")
    vl.add_argument("--unresolved", action="store_true")
    vl.add_argument("--id-number", help="只列此身份证号的就诊")
    vl.add_argument("--json", action="store_true")
    vl.set_defaults(func=cmd_visit_list, needs="view_visits")
    vr = vi.add_parser("revoke", help="撤销当天的结算（2208）")
    vr.add_argument("visit_id")
    vr.add_argument("--reason", required=True)
    vr.set_defaults(func=cmd_visit_revoke, needs="revoke")
    vv = vi.add_parser("reverse", help="冲正结果未知的结算（2601）")
    vv.add_argument("visit_id")
    vv.set_defaults(func=cmd_visit_reverse, needs="reverse")
    vp = vi.add_parser("reprint", help="补打收据")
    vp.add_argument("visit_id")
    vp.set_defaults(func=cmd_visit_reprint, needs="reprint")

    sp = sub.add_parser("self-pay", help="断网时自费收费（不经医保）")
    sp.add_argument("--rx", required=True)
    sp.add_argument("--reader")
    sp.set_defaults(func=cmd_self_pay, needs="self_pay")

    dy = sub.add_parser("day", help="日结").add_subparsers(dest="sub", required=True)
    dc = dy.add_parser("close", help="对总账、对明细账、清点现金、签退")
    dc.add_argument("--date", help="yyyy-mm-dd，默认今天")
    dc.add_argument("--cash-counted", help="实点现金（元），如 123.50")
    dc.add_argument("--network")
    dc.add_argument("--json", action="store_true")
    dc.set_defaults(func=cmd_day_close, needs="day_close")

    dm = sub.add_parser("demo", help="无界面演示：启动模拟医保与虚拟读卡器，结算一次")
    dm.set_defaults(func=cmd_demo, needs=SELF_LOGIN)
    _register_extensions(sub)
    return p


def _register_extensions(sub) -> None:
    """Command groups kept in their own modules: clinic/cli_*.py, each with register(sub)."""
    import importlib
    import pkgutil

    import clinic
    for mod in sorted(m.name for m in pkgutil.iter_modules(clinic.__path__)
                      if m.name.startswith("cli_")):
        importlib.import_module(f"clinic.{mod}").register(sub)


def _login_for(args, settings: Settings):
    """Log in and check the role for commands that act on the clinic's data (fail closed)."""
    needs = getattr(args, "needs", None)
    if needs in (NO_LOGIN, SELF_LOGIN, LOGIN_IN_WINDOW):
        return None
    if not needs:
        from .errors import NotAllowed
        raise NotAllowed("此命令未声明所需权限，已拒绝执行", f"command {args.command} declares no role")
    from .auth import login_from_env_or_prompt
    from .roles import require
    session = login_from_env_or_prompt(settings)
    if session.must_change_password:
        from .auth import AuthError
        raise AuthError("请先修改密码（管理员设置或重置的密码只能用来改密码）：clinic user passwd",
                        f"{session.operator.opter} must change password")
    require(session.operator, needs)
    log.info("command %s by %s (%s)", args.command, session.operator.opter, session.operator.role)
    return session


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.training:
        from training_mode.profile import training_settings
        settings = training_settings()
    else:
        settings = load_settings()
    if getattr(args, "network", None):
        settings = replace(settings, network_url=args.network)
    _setup_logging(settings, args.verbose)
    try:
        assert_training_isolated(settings)
        args.session = _login_for(args, settings)
        return args.func(args, settings)
    except CounterError as exc:
        log.warning("%s: %s", type(exc).__name__, exc.detail)
        print(exc.message, file=sys.stderr)
        return exc.exit_code
    except TrainingIsolationError as exc:
        log.error("training isolation: %s", exc)
        print(exc.message, file=sys.stderr)
        return EXIT_NOT_ALLOWED


if __name__ == "__main__":
    raise SystemExit(main())
