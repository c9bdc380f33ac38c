"""Backups through SQLite's online backup API (never a file copy, which can tear a WAL database),
verified before they are given their final name."""
from __future__ import annotations

import os
import sqlite3
from datetime import datetime
from pathlib import Path


class BackupError(Exception):
    def __init__(self, message: str, detail: str = ""):
        super().__init__(message)
        self.message = message
        self.detail = detail


def _counts(con: sqlite3.Connection) -> dict[str, int]:
    tables = [r[0] for r in con.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")]
    return {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


def create_backup(db_path: Path, out_dir: Path, now: datetime | None = None) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    final = out_dir / f"clinic-{stamp}.db"
    tmp = final.with_suffix(".part")
    src = sqlite3.connect(db_path, isolation_level=None)
    dst = sqlite3.connect(tmp)
    try:
        # One read snapshot for both the counts and the copy, while the counter keeps writing.
        src.execute("BEGIN")
        src_counts = _counts(src)
        src.backup(dst)
        src.execute("COMMIT")
        dst.execute("PRAGMA journal_mode=DELETE")  # a backup is one self-contained file
        check = dst.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise BackupError("备份校验失败，请重试", f"integrity_check: {check}")
        dst_counts = _counts(dst)
        if src_counts != dst_counts:
            raise BackupError("备份校验失败：记录数不一致", f"{src_counts} != {dst_counts}")
    finally:
        dst.close()
        src.close()
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    return final
