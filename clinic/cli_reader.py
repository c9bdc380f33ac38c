"""`clinic reader ...`: the virtual reader (emulate), its control channel (ctl), serial ports.

    clinic reader emulate [--link PATH] [--certno X | --card-no X | --index N]
                          [--state normal|locked|expired|not-ssc] [--control SOCKET]
                          [--baud 9600] [--tcp]
    clinic reader ctl --control SOCKET insert (--card-no X | --certno X | --index N) [--state S]
    clinic reader ctl --control SOCKET remove | clear | status
    clinic reader ctl --control SOCKET fault noise|crc|partial|slow|pull|silent|mute|nak
                          [--count N] [--after N] [--delay S]
    clinic reader ports

`emulate` prints exactly one line, ``virtual card reader on PATH`` (callers wait for
"reader on"), and, with --control, ``control on SOCKET``.  Cards come from the simulator's
registry; a villager whose card the registry says is locked (``registry.card_state``) gets a
PIN-locked card.  ``--state`` forces a problem card: locked (PIN blocked, 6983), expired
(expiry date in the past), not-ssc (a bank card: no social-security application).
"""
from __future__ import annotations

import json
import sys
from dataclasses import replace
from datetime import date, timedelta

from .roles import NO_LOGIN

EXIT_OK, EXIT_CARD, EXIT_CONTROL = 0, 4, 7
CARD_STATES = ("normal", "locked", "expired", "not-ssc")
BANK_AID = bytes.fromhex("A000000333010101")   # a UnionPay debit application


def card_of(villager):
    """The social-security card the simulator's registry says this villager holds."""
    from cardreader.card import CardData
    return CardData(region_code=villager.certno[:6], certno=villager.certno,
                    card_no=villager.card_no, card_sn=villager.card_sn, name=villager.psn_name,
                    atr="", spec_version="3.00",
                    issue_date=villager.card_issue_date.strftime("%Y%m%d"),
                    expiry_date=villager.card_expiry_date.strftime("%Y%m%d"))


def find_villager(certno: str | None = None, card_no: str | None = None,
                  index: int | None = None):
    from settlement.mock_network import registry
    if certno:
        return registry.find_by_certno(certno)
    if card_no:
        return registry.find_by_card(card_no)
    if index is not None:
        people = registry.build_registry()
        return people[index % len(people)]
    return registry.default_villager()


def virtual_card(villager, state: str | None = None):
    """The VirtualCard of a villager; ``state`` forces a problem card, else the registry's
    ``card_state`` (if the simulator has it) decides whether the card is locked."""
    from cardreader.cardfile import SSC_AID, VirtualCard
    from settlement.mock_network import registry
    if state in (None, "", "registry"):
        state_fn = getattr(registry, "card_state", None)
        state = state_fn(villager) if state_fn else "normal"
        if state not in CARD_STATES:
            state = "normal"     # suspended insurance etc.: the card itself works
        if state == "expired":
            state = "normal"     # the registry's expiry date is on the card already
    if state not in CARD_STATES:
        raise ValueError(f"unknown card state {state!r}; one of {', '.join(CARD_STATES)}")
    card = card_of(villager)
    if state == "expired" and card.expiry_date >= date.today().strftime("%Y%m%d"):
        expiry = date.today() - timedelta(days=30)
        issue = min(villager.card_issue_date, expiry - timedelta(days=3650))
        card = replace(card, issue_date=issue.strftime("%Y%m%d"),
                       expiry_date=expiry.strftime("%Y%m%d"))
    pin_fn = getattr(registry, "card_pin", None)
    pin = pin_fn(villager) if pin_fn else "123456"
    vc = VirtualCard.from_card_data(
        card, sex=villager.gend, birth=villager.brdy,
        pin=pin if state == "locked" else None,
        aid=BANK_AID if state == "not-ssc" else SSC_AID)
    if state == "locked":
        vc.pin_tries_left = 0
    return vc


def _card_from_request(spec: dict):
    villager = find_villager(spec.get("certno"), spec.get("card_no"), spec.get("index"))
    if villager is None:
        raise ValueError("登记库里没有这张卡")
    return virtual_card(villager, spec.get("state"))


def cmd_reader_emulate(args, settings) -> int:
    from cardreader.emulator import VirtualReader
    villager = find_villager(args.certno, args.card_no, args.index)
    if villager is None:
        print("登记库里没有这张卡", file=sys.stderr)
        return EXIT_CARD
    reader = VirtualReader(virtual_card(villager, args.state), line_rate=args.baud)
    if args.tcp:
        path = reader.open_tcp()
        shown = path
    else:
        path = reader.open_pty(args.link)
        shown = args.link or path
    control = None
    if args.control:
        from cardreader.control import ControlServer
        control = ControlServer(reader, args.control, _card_from_request).start()
    print(f"virtual card reader on {shown}", flush=True)
    if control:
        print(f"control on {args.control}", flush=True)
    try:
        reader.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if control:
            control.stop()
        reader.stop()
    return EXIT_OK


def cmd_reader_ctl(args, settings) -> int:
    from cardreader.control import control_request
    if args.action == "insert":
        req = {"op": "insert", "card": {"certno": args.certno, "card_no": args.card_no,
                                        "index": args.index, "state": args.state}}
    elif args.action == "fault":
        req = {"op": "fault", "kind": args.kind, "count": args.count, "after": args.after,
               "delay": args.delay}
    else:
        req = {"op": args.action}
    try:
        answer = control_request(args.control, req)
    except (OSError, ValueError) as exc:
        print(f"连不上虚拟读卡器的控制通道 {args.control}：{exc}", file=sys.stderr)
        return EXIT_CONTROL
    print(json.dumps(answer, ensure_ascii=False))
    return EXIT_OK if answer.get("ok") else EXIT_CONTROL


def cmd_reader_ports(args, settings) -> int:
    from cardreader.ports import list_serial_ports
    ports = list_serial_ports()
    if args.json:
        print(json.dumps([{"device": p.device, "usb_id": p.usb_id, "bridge": p.bridge,
                           "description": p.description, "serial_number": p.serial_number,
                           "manufacturer": p.manufacturer} for p in ports],
                         ensure_ascii=False, indent=2))
    else:
        for p in ports:
            print(p.label())
        if not ports:
            print("没有找到串口；请检查读卡器是否插好（USB 读卡器会显示 USB 编号）")
    return EXIT_OK


def reader_store(settings):
    from cardreader.devices import DeviceStore
    return DeviceStore(settings.home / "reader.json")


def remembered_reader(settings) -> str:
    """The reader to open when none is named: the one chosen with `clinic reader use`
    (found again by USB id if it was re-plugged under another name), else nothing."""
    return reader_store(settings).resolve() or ""


def cmd_reader_use(args, settings) -> int:
    from cardreader.devices import ReaderChoice
    from cardreader.ports import list_serial_ports
    port = next((p for p in list_serial_ports() if p.device == args.port), None)
    choice = (ReaderChoice.from_port(port, args.baudrate) if port
              else ReaderChoice(args.port, args.baudrate))
    reader_store(settings).save(choice)
    print(f"已记住读卡器：{choice.url}" + (f"（USB {choice.usb_id}）" if choice.usb_id else ""))
    return EXIT_OK


def register(sub) -> None:
    from cardreader.control import FAULT_KINDS
    rd = sub.add_parser("reader", help="读卡器").add_subparsers(dest="sub", required=True)

    em = rd.add_parser("emulate", help="虚拟读卡器（伪终端）")
    em.add_argument("--link", help="在此路径建立指向伪终端的符号链接")
    em.add_argument("--certno")
    em.add_argument("--card-no")
    em.add_argument("--index", type=int)
    em.add_argument("--state", choices=CARD_STATES,
                    help="插入有问题的卡：locked 密码锁定，expired 过期，not-ssc 非社保卡")
    em.add_argument("--control", metavar="SOCKET", help="控制通道（Unix 套接字路径），默认关闭")
    em.add_argument("--baud", type=int, help="按此波特率放慢收发，模拟真实串口（默认不限速）")
    em.add_argument("--tcp", action="store_true", help="用 socket://127.0.0.1:PORT 代替伪终端")
    em.set_defaults(func=cmd_reader_emulate, needs=NO_LOGIN)

    ctl = rd.add_parser("ctl", help="控制运行中的虚拟读卡器：换卡、注入故障")
    ctl.add_argument("--control", required=True, metavar="SOCKET")
    acts = ctl.add_subparsers(dest="action", required=True)
    ins = acts.add_parser("insert", help="插入登记库里的一张卡")
    ins.add_argument("--certno")
    ins.add_argument("--card-no")
    ins.add_argument("--index", type=int)
    ins.add_argument("--state", choices=CARD_STATES)
    acts.add_parser("remove", help="拔出卡片")
    acts.add_parser("clear", help="清除所有故障")
    acts.add_parser("status", help="显示卡片与故障状态")
    ft = acts.add_parser("fault", help="注入故障")
    ft.add_argument("kind", choices=FAULT_KINDS)
    ft.add_argument("--count", type=int, default=1, help="影响的应答或指令个数")
    ft.add_argument("--after", type=int, default=0, help="先正常应答这么多次")
    ft.add_argument("--delay", type=float, default=0.0, help="slow/partial 的延时（秒）")
    ctl.set_defaults(func=cmd_reader_ctl, needs=NO_LOGIN)

    po = rd.add_parser("ports", help="列出串口及其 USB 编号")
    po.add_argument("--json", action="store_true")
    po.set_defaults(func=cmd_reader_ports, needs=NO_LOGIN)

    us = rd.add_parser("use", help="记住本机的读卡器（之后结算不必再写 --reader）")
    us.add_argument("port", help="串口设备或 pyserial URL，如 /dev/ttyUSB0、COM3")
    us.add_argument("--baudrate", type=int, default=115200)
    us.set_defaults(func=cmd_reader_use, needs="configure_reader")
