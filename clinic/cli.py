"""`clinic`: the command line. Each command is a thin shell over the same library the desk app uses."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict, replace
from pathlib import Path

from settlement.money import yuan

from .config import Settings, TrainingIsolationError, assert_training_isolated, load_settings
from .errors import CounterError

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
    from .counter import Counter
    from .domain import Operator
    spec = parse_rx(args.rx)
    overrides = parse_overrides(args.override or [])
    counter = Counter(settings, Operator(settings.opter, settings.opter_name))
    result = None
    try:
        if args.id_number:
            cred = counter.credential_from_id_number(args.id_number)
        else:
            cred = counter.credential_from_card(counter.read_card(args.reader or settings.reader_url))
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


def cmd_network_serve(args, settings: Settings) -> int:
    from settlement.mock_network.server import serve
    db = args.db or f"sqlite:///{settings.home / 'insurer-simulator.db'}"
    serve(host=args.host, port=args.port, db_url=db, policy_path=args.policy)
    return 0


def card_of(villager) -> "CardData":
    """The social-security card the simulator's registry says this villager holds."""
    from cardreader.card import CardData
    return CardData(region_code=villager.certno[:6], certno=villager.certno,
                    card_no=villager.card_no, card_sn=villager.card_sn, name=villager.psn_name,
                    atr="", spec_version="3.00",
                    issue_date=villager.card_issue_date.strftime("%Y%m%d"),
                    expiry_date=villager.card_expiry_date.strftime("%Y%m%d"))


def cmd_reader_emulate(args, settings: Settings) -> int:
    from cardreader.emulator import VirtualCard, VirtualReader
    from settlement.mock_network import registry
    people = registry.build_registry()
    if args.certno:
        villager = next((v for v in people if v.certno == args.certno), None)
    elif args.card_no:
        villager = next((v for v in people if v.card_no == args.card_no), None)
    elif args.index is not None:
        villager = people[args.index % len(people)]
    else:
        villager = registry.default_villager()
    if villager is None:
        print("登记库里没有这张卡", file=sys.stderr)
        return EXIT_CARD
    reader = VirtualReader(VirtualCard.from_card_data(card_of(villager), sex=villager.gend,
                                                      birth=villager.brdy))
    path = reader.open_pty(args.link)
    print(f"virtual card reader on {args.link or path}", flush=True)
    try:
        reader.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        reader.stop()
    return 0


def cmd_formulary_search(args, settings: Settings) -> int:
    from formulary.catalog import Formulary
    hits = Formulary.load_default().search(args.query, limit=args.limit)
    if args.json:
        print(json.dumps([{"code": d.code, "name": d.name, "strength": d.strength,
                           "unit": d.unit, "price": yuan(d.price_fen), "class": d.chrgitm_lv}
                          for d in hits], ensure_ascii=False, indent=2))
    else:
        for d in hits:
            print(f"{d.code}  {d.name} {d.strength} /{d.unit}  {yuan(d.price_fen)}元")
        if not hits:
            print("没有找到匹配的药品")
    return 0 if hits else 1


def cmd_audit_verify(args, settings: Settings) -> int:
    from .audit import verify
    from .db import open_database
    report = verify(open_database(Path(args.db) if args.db else settings.db_path))
    print(report.message)
    if not report.ok:
        print(f"first bad entry: seq {report.first_bad_seq} ({report.kind})", file=sys.stderr)
    return 0 if report.ok else 1


def cmd_desk(args, settings: Settings) -> int:
    from .gui.app import run_desk
    if args.network and args.reader:
        return run_desk(settings, reader_url=args.reader)
    # Nothing given: bring up the simulator and a virtual reader on embedded defaults.
    from .services import counter_services
    with counter_services(settings.home / "services") as (network_url, reader_path):
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
    s.add_argument("--rx", required=True, help='药品:数量[:天数],... 例如 "xbdp:1:7"')
    s.add_argument("--diagnosis", default="I10")
    s.add_argument("--emergency", action="store_true")
    s.add_argument("--override", action="append", metavar="RULE_ID:REASON")
    s.add_argument("--network", help="医保平台地址，如 http://127.0.0.1:8080")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_settle)

    net = sub.add_parser("network", help="模拟医保中心").add_subparsers(dest="sub", required=True)
    ns = net.add_parser("serve")
    ns.add_argument("--host", default="127.0.0.1")
    ns.add_argument("--port", type=int, default=8080)
    ns.add_argument("--db")
    ns.add_argument("--policy")
    ns.set_defaults(func=cmd_network_serve)

    rd = sub.add_parser("reader", help="读卡器").add_subparsers(dest="sub", required=True)
    re_ = rd.add_parser("emulate", help="虚拟读卡器（伪终端）")
    re_.add_argument("--link")
    re_.add_argument("--certno")
    re_.add_argument("--card-no")
    re_.add_argument("--index", type=int)
    re_.set_defaults(func=cmd_reader_emulate)

    fm = sub.add_parser("formulary", help="药品目录").add_subparsers(dest="sub", required=True)
    fs = fm.add_parser("search")
    fs.add_argument("query")
    fs.add_argument("--limit", type=int, default=20)
    fs.add_argument("--json", action="store_true")
    fs.set_defaults(func=cmd_formulary_search)

    au = sub.add_parser("audit", help="审计日志").add_subparsers(dest="sub", required=True)
    av = au.add_parser("verify")
    av.add_argument("--db")
    av.set_defaults(func=cmd_audit_verify)

    dk = sub.add_parser("desk", help="柜台窗口")
    dk.add_argument("--reader")
    dk.add_argument("--network")
    dk.set_defaults(func=cmd_desk)

    dm = sub.add_parser("demo", help="无界面演示：启动模拟医保与虚拟读卡器，结算一次")
    dm.set_defaults(func=cmd_demo)
    return p


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
