"""`clinic audit ...`: verify the chain (database or bundle), export a signed bundle, show the key."""
from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

from .audit_verify import EXIT_UNREADABLE


def _key_arg(args, settings) -> bytes | None:
    from . import audit_keys
    if args.key:
        return audit_keys.load_public_key(Path(args.key))
    key = audit_keys.signing_key_if_present(settings.keys_dir)
    return audit_keys.public_raw(key) if key is not None else None


def _anchors(paths: list[str]) -> list[dict]:
    """Checkpoints carried off the PC: a day-close report (JSON) or a checkpoint JSON."""
    out = []
    for p in paths or []:
        data = json.loads(Path(p).read_text(encoding="utf-8"))
        cp = data.get("audit_checkpoint", data) if isinstance(data, dict) else None
        if not cp or "seq" not in cp:
            raise ValueError(f"{p}: no audit checkpoint in it")
        out.append(cp)
    return out


def _print(report) -> int:
    print(report.message)
    if report.status == "damaged":
        print(f"first bad entry: seq {report.first_bad_seq} ({report.kind}) — {report.detail}",
              file=sys.stderr)
    elif report.status == "unproven":
        print(f"completeness unproven: {report.detail}", file=sys.stderr)
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    return report.exit_code


def cmd_audit_verify(args, settings) -> int:
    from .audit_export import BundleError, read_bundle, verify_bundle
    from .audit_keys import KeyFileError
    try:
        if args.bundle:
            bundle = read_bundle(Path(args.bundle))
            # Without --key only this clinic's own key may stand in for the pinned one.
            key = _key_arg(args, settings) if args.key or \
                bundle.clinic == settings.fixmedins_code else None
            return _print(verify_bundle(bundle, key, thorough=args.all_signatures))
        key = _key_arg(args, settings)
        from sqlalchemy import create_engine

        from .audit import verify
        db = Path(args.db) if args.db else settings.db_path
        if not db.exists():
            print(f"找不到数据库：{db}", file=sys.stderr)
            return EXIT_UNREADABLE
        # Read-only look: verification must not migrate or write the database it judges.
        engine = create_engine(f"sqlite:///file:{db}?mode=ro&uri=true")
        try:
            return _print(verify(engine, key, _anchors(args.anchor),
                                 thorough=args.all_signatures))
        finally:
            engine.dispose()
    except BundleError as exc:
        print(exc.message, file=sys.stderr)
        print(exc.detail, file=sys.stderr)
        return EXIT_UNREADABLE
    except (KeyFileError, ValueError, OSError) as exc:
        print(f"无法核验：{exc}", file=sys.stderr)
        return EXIT_UNREADABLE


def _open_log(args, settings):
    from .audit import Actor, AuditLog
    from .db import open_database
    engine = open_database(settings.db_path)
    return engine, AuditLog(engine, Actor.acting(settings, args.session.operator))


def cmd_audit_export(args, settings) -> int:
    from .audit_export import BundleError, export_bundle
    engine, log = _open_log(args, settings)
    try:
        m = export_bundle(engine, log, settings.keys_dir, Path(args.out),
                          clinic_name=settings.fixmedins_name,
                          first_day=date.fromisoformat(args.from_) if args.from_ else None,
                          last_day=date.fromisoformat(args.to) if args.to else None)
    except BundleError as exc:
        print(exc.message, file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"审计包已导出：{args.out}（第 {m['first_seq']}–{m['last_seq']} 条，共 {m['count']} 条，"
          f"已签名）")
    print(f"clinic key id {m['key_id']}", file=sys.stderr)
    return 0


def cmd_audit_pubkey(args, settings) -> int:
    from . import audit_keys
    key = audit_keys.load_or_create_signing_key(settings.keys_dir)
    raw = audit_keys.public_raw(key)
    text = audit_keys.public_pem(raw) if args.pem else raw.hex() + "\n"
    if args.out:
        Path(args.out).write_text(text)
    print(text, end="")
    print(f"key id {audit_keys.key_id(raw)}", file=sys.stderr)
    return 0


def cmd_audit_checkpoint(args, settings) -> int:
    engine, log = _open_log(args, settings)
    try:
        cp = log.checkpoint(settings.keys_dir, "manual")
    finally:
        engine.dispose()
    if cp is None:
        print("审计日志为空，无需签名", file=sys.stderr)
        return 1
    print(json.dumps(cp, ensure_ascii=False, indent=1))
    return 0


def register(sub) -> None:
    au = sub.add_parser("audit", help="审计日志").add_subparsers(dest="sub", required=True)
    av = au.add_parser("verify", help="核验审计链（本机数据库或导出的审计包）")
    src = av.add_mutually_exclusive_group()
    src.add_argument("--db", help="数据库文件，默认本机")
    src.add_argument("--bundle", help="导出的审计包（zip）")
    av.add_argument("--key", help="卫生室的公钥文件（hex 或 PEM）；不给则用本机密钥/包内公钥")
    av.add_argument("--anchor", action="append", metavar="FILE",
                    help="带出本机的检查点（日结报告 JSON 或检查点 JSON），可重复")
    av.add_argument("--all-signatures", action="store_true",
                    help="逐个核验每个检查点的签名（默认只核验结论所依据的检查点）")
    av.set_defaults(func=cmd_audit_verify, needs="audit_verify")
    ae = au.add_parser("export", help="导出签名审计包给镇卫生院")
    ae.add_argument("--out", required=True)
    ae.add_argument("--from", dest="from_", help="yyyy-mm-dd（含）")
    ae.add_argument("--to", help="yyyy-mm-dd（含）")
    ae.set_defaults(func=cmd_audit_export, needs="audit_export")
    ap = au.add_parser("pubkey", help="显示本卫生室的审计签名公钥")
    ap.add_argument("--pem", action="store_true")
    ap.add_argument("--out")
    ap.set_defaults(func=cmd_audit_pubkey, needs="audit_verify")
    ac = au.add_parser("checkpoint", help="现在对审计链签一个检查点")
    ac.set_defaults(func=cmd_audit_checkpoint, needs="audit_checkpoint")
