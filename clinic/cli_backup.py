"""`clinic backup create|verify|restore`: encrypted backups under the data key (clinic.backup).

Each command runs for the session the CLI logged in (the data key comes from the user's key
slot) after checking the role: "backup" for create and verify, "restore" for restore.
"""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

def _audit(settings, session, action: str, obj: str, outcome: str = "ok", **details) -> None:
    from .audit import Actor, AuditLog
    from .db import open_database
    engine = open_database(settings.db_path)
    try:
        AuditLog(engine, Actor.acting(settings, session.operator)).append(action, obj, outcome,
                                                                         **details)
    finally:
        engine.dispose()


def _backups_dir(args, settings) -> Path:
    return Path(args.out) if getattr(args, "out", None) else settings.home / "backups"


def cmd_backup_create(args, settings) -> int:
    from .backup import create_backup, verify_backup
    from .db import open_database
    session = args.session
    open_database(settings.db_path).dispose()  # the schema is current before it is copied
    path = create_backup(settings.db_path, _backups_dir(args, settings), session.data_key)
    info = verify_backup(path, session.data_key)
    _audit(settings, session, "backup_create", path.name, "ok", key_id=info.key_id,
           rows=sum(info.counts.values()), size=info.size)
    if args.json:
        print(json.dumps({"path": str(path), "created": info.created, "counts": info.counts,
                          "key_id": info.key_id}, ensure_ascii=False))
    else:
        print(f"备份已完成并已校验（已加密）：{path}")
    return 0


def cmd_backup_verify(args, settings) -> int:
    from .backup import verify_backup
    session = args.session
    info = verify_backup(Path(args.file), session.data_key)
    if args.json:
        print(json.dumps({"path": str(info.path), "created": info.created, "counts": info.counts,
                          "schema": info.schema, "key_id": info.key_id}, ensure_ascii=False))
    else:
        print(f"备份完好：{info.path.name}，制作于 {info.created}，"
              f"就诊记录 {info.counts.get('visit', 0)} 条，审计事件 {info.counts.get('audit_event', 0)} 条")
    return 0


def cmd_backup_restore(args, settings) -> int:
    from .backup import restore_backup
    session = args.session
    src = Path(args.file)
    info, kept = restore_backup(src, settings.db_path, session.data_key,
                                settings.home / "backups", datetime.now())
    # The restored database gets the event (the replaced one is in the kept backup).
    _audit(settings, session, "backup_restore", src.name, "ok", created=info.created,
           kept=kept.name if kept else "", key_id=info.key_id)
    print(f"已从备份恢复：{src.name}（制作于 {info.created}）")
    if kept:
        print(f"恢复前的数据库已加密保存为：{kept}")
    return 0


def register(sub) -> None:
    bk = sub.add_parser("backup", help="加密备份与恢复").add_subparsers(dest="sub", required=True)
    bc = bk.add_parser("create", help="备份数据库（加密并校验）")
    bc.add_argument("--out", help="备份目录，默认为数据目录下的 backups")
    bc.add_argument("--json", action="store_true")
    bc.set_defaults(func=cmd_backup_create, needs="backup")
    bv = bk.add_parser("verify", help="校验一个备份文件")
    bv.add_argument("file")
    bv.add_argument("--json", action="store_true")
    bv.set_defaults(func=cmd_backup_verify, needs="backup")
    br = bk.add_parser("restore", help="从备份恢复（先关闭柜台程序）")
    br.add_argument("file")
    br.set_defaults(func=cmd_backup_restore, needs="restore")
