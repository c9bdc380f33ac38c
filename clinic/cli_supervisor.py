"""`clinic supervisor ...`: the town supervisor's store of clinic audit bundles, and reports."""
from __future__ import annotations

import json
import sys
from pathlib import Path

EXIT_REFUSED = 1


def _db(args, settings) -> str:
    return args.db or f"sqlite:///{settings.home / 'supervisor.db'}"


def _keys(values: list[str]) -> dict[str, bytes]:
    from .audit_keys import load_public_key
    out = {}
    for v in values or []:
        clinic, _, path = v.partition("=")
        if not path:
            raise ValueError(f"--key 写法应为 机构编码=公钥文件：{v}")
        out[clinic] = load_public_key(Path(path))
    return out


def cmd_supervisor_import(args, settings) -> int:
    from .supervisor.store import ImportRefused, Store
    keys = _keys(args.key)
    store = Store(_db(args, settings))
    refused = 0
    try:
        for path in args.bundles:
            p = Path(path)
            try:
                if p.suffix == ".json":      # a day-close report: its checkpoint only
                    data = json.loads(p.read_text(encoding="utf-8"))
                    status = store.import_checkpoint(data.get("audit_checkpoint") or data)
                    print(f"{p.name}：检查点{'已保存' if status == 'stored' else '已存在'}")
                    continue
                clinic = _clinic_of(p)
                r = store.import_bundle(p, keys.get(clinic))
            except ImportRefused as exc:
                refused += 1
                print(f"{p.name}：拒绝导入 — {exc.message}", file=sys.stdout)
                print(f"{p.name}: refused ({exc.kind}) at seq {exc.seq}: {exc.detail}",
                      file=sys.stderr)
                continue
            if r.status == "already_imported":
                print(f"{p.name}：{r.clinic} 第 {r.first_seq}–{r.last_seq} 条已导入过，未改动")
            else:
                print(f"{p.name}：{r.clinic} 第 {r.first_seq}–{r.last_seq} 条，新增 {r.new_events} 条")
            for note in r.notes:
                print(f"  note: {note}", file=sys.stderr)
    finally:
        store.close()
    return EXIT_REFUSED if refused else 0


def _clinic_of(path: Path) -> str:
    from .audit_export import BundleError, read_bundle
    try:
        return read_bundle(path).clinic
    except BundleError:
        return ""


def cmd_supervisor_report(args, settings) -> int:
    from .supervisor.report import write_report
    from .supervisor.store import Store
    store = Store(_db(args, settings))
    try:
        pdf, csv_path, data = write_report(store, Path(args.out), args.from_, args.to,
                                           Path(args.rules) if args.rules else None)
    finally:
        store.close()
    print(f"报告：{pdf}\nCSV：{csv_path}\n期间 {data.first_day}–{data.last_day}，异常 {len(data.findings)} 条")
    return 0


def cmd_supervisor_verify(args, settings) -> int:
    from .supervisor.store import Store
    store = Store(_db(args, settings))
    worst = 0
    try:
        for c in store.clinics():
            r = store.verify_clinic(c["clinic"])
            print(f"{c['clinic']}：{r.message}")
            if r.status == "damaged":
                print(f"{c['clinic']}: seq {r.first_bad_seq} ({r.kind})", file=sys.stderr)
            worst = max(worst, r.exit_code)
    finally:
        store.close()
    return worst


def cmd_supervisor_town_key(args, settings) -> int:
    from .audit_keys import write_town_key
    out = Path(args.out)
    if out.exists():
        print(f"{out} 已存在，不覆盖", file=sys.stderr)
        return 1
    write_town_key(out)
    print(f"镇级假名密钥已生成：{out}（复制到各卫生室 keys/town_pseudonym.key）")
    return 0


def register(sub) -> None:
    sv = sub.add_parser("supervisor", help="镇卫生院：汇总审计包、核验、异常与报告") \
        .add_subparsers(dest="sub", required=True)
    si = sv.add_parser("import", help="导入卫生室的审计包（或日结报告中的检查点）")
    si.add_argument("bundles", nargs="+", metavar="BUNDLE")
    si.add_argument("--db", help="SQLAlchemy URL：sqlite:///town.db 或 postgresql+psycopg://...")
    si.add_argument("--key", action="append", metavar="CLINIC=PUBKEY",
                    help="登记卫生室公钥（首次导入时），可重复")
    si.set_defaults(func=cmd_supervisor_import, needs="supervisor_store")
    sr = sv.add_parser("report", help="异常规则与统计报告（PDF 和 CSV）")
    sr.add_argument("--db")
    sr.add_argument("--from", dest="from_")
    sr.add_argument("--to")
    sr.add_argument("--rules", help="规则文件（TOML），默认 clinic/supervisor/rules.toml")
    sr.add_argument("--out", required=True)
    sr.set_defaults(func=cmd_supervisor_report, needs="supervisor_store")
    sc = sv.add_parser("verify", help="重新核验库中各卫生室的审计链")
    sc.add_argument("--db")
    sc.set_defaults(func=cmd_supervisor_verify, needs="supervisor_store")
    st = sv.add_parser("town-key", help="生成镇级假名密钥（跨卫生室识别同一张卡）")
    st.add_argument("--out", required=True)
    st.set_defaults(func=cmd_supervisor_town_key, needs="supervisor_store")
