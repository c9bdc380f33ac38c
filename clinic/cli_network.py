"""`clinic network ...`: the insurer simulator (serve) and its registry's cards (cards)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .config import Settings
from .roles import NO_LOGIN

STATE_CHOICES = ("normal", "suspended", "expired", "locked", "chronic", "zero_balance",
                 "deductible_reached")


def cmd_network_serve(args, settings: Settings) -> int:
    from settlement.mock_network.faults import parse_fault
    from settlement.mock_network.server import serve
    try:
        faults = [parse_fault(f) for f in args.fault or []]
    except ValueError as exc:
        print(f"故障设置写法不对：{exc}", file=sys.stderr)
        return 2
    db = args.db or f"sqlite:///{settings.home / 'insurer-simulator.db'}"
    serve(host=args.host, port=args.port, db_url=db, policy_path=args.policy, faults=faults,
          control=args.control)
    return 0


def card_record(v) -> dict:
    """What a virtual card reader needs to present this villager's card (simulator data,
    all fictitious): the card file fields, the holder's, the PIN and how many tries are left."""
    from settlement.mock_network import registry
    card_state = registry.card_state(v)
    rec = {
        "card_no": v.card_no, "card_sn": v.card_sn, "region_code": v.certno[:6],
        "certno": v.certno, "name": v.psn_name, "sex": v.gend, "birth": v.brdy.strftime("%Y%m%d"),
        "issue_date": v.card_issue_date.strftime("%Y%m%d"),
        "expiry_date": v.card_expiry_date.strftime("%Y%m%d"), "spec_version": "3.00", "atr": "",
        "pin": registry.card_pin(v), "pin_tries_left": 0 if card_state == "locked" else 3,
        "card_state": card_state, "states": list(registry.states(v)),
        "psn_no": v.psn_no, "village": v.village, "insutype": v.insutype,
    }
    try:  # the voucher hub's QR text for training sheets, when the hub is there
        from settlement.mock_network.voucher_hub import qr_payload
        rec["qr"] = qr_payload(v)
    except ImportError:
        pass
    return rec


def cmd_network_cards(args, settings: Settings) -> int:
    from settlement.mock_network import registry
    people = registry.select_villagers(village=args.village, state=args.state)
    if args.limit is not None:
        people = people[:max(0, args.limit)]
    if args.json:
        text = json.dumps([card_record(v) for v in people], ensure_ascii=False, indent=2) + "\n"
    else:  # a listing to pick a card from: no names, no ID numbers
        rows = ["card_no\tcard_sn\tcard_state\tstates\tvillage\tinsutype\tpsn_no"]
        for v in people:
            rows.append("\t".join((v.card_no, v.card_sn, registry.card_state(v),
                                   ",".join(registry.states(v)), v.village, v.insutype, v.psn_no)))
        text = "\n".join(rows) + "\n"
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"{len(people)} 张卡已导出到 {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0 if people else 1


def register(sub) -> None:
    net = sub.add_parser("network", help="模拟医保中心").add_subparsers(dest="sub", required=True)
    ns = net.add_parser("serve")
    ns.add_argument("--host", default="127.0.0.1")
    ns.add_argument("--port", type=int, default=8080)
    ns.add_argument("--db")
    ns.add_argument("--policy")
    ns.add_argument("--fault", action="append", metavar="INFNO:KIND[:COUNT[:SECONDS]]",
                    help="故障注入（培训与测试用），可重复")
    ns.add_argument("--control", action="store_true", help="开启仅限本机的故障控制接口")
    ns.set_defaults(func=cmd_network_serve, needs=NO_LOGIN)

    nc = net.add_parser("cards", help="导出模拟参保人登记库的社保卡（供虚拟读卡器）")
    nc.add_argument("--json", action="store_true", help="完整卡数据（JSON），否则为列表")
    nc.add_argument("--village", help="只导出该村，如 新春村")
    nc.add_argument("--state", choices=STATE_CHOICES, help="只导出处于该状态的参保人")
    nc.add_argument("--limit", type=int)
    nc.add_argument("--out", help="写入文件而不是标准输出")
    nc.set_defaults(func=cmd_network_cards, needs=NO_LOGIN)
