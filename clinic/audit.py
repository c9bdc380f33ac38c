"""The append-only, hash-chained audit log.

Each event's hash covers its fields and the previous hash, under a domain-separation prefix, so
any edit, deletion, insertion or reordering breaks the chain at a nameable sequence number.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from .models import AuditEvent

GENESIS = "0" * 64
_DOMAIN = b"clinic-audit-event-v1\x00"
_FIELDS = ("seq", "ts", "clinic", "terminal", "operator", "role", "action", "object",
           "outcome", "details", "prev_hash")


def event_hash(row: dict) -> str:
    canon = json.dumps([row[f] for f in _FIELDS], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(_DOMAIN + canon.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Actor:
    clinic: str
    terminal: str
    operator: str
    role: str


class AuditLog:
    def __init__(self, engine: Engine, actor: Actor, clock=datetime.now):
        self._engine = engine
        self._actor = actor
        self._clock = clock

    def append(self, action: str, obj: str = "", outcome: str = "ok", **details) -> int:
        """Append one event; details must already hold only protected patient identifiers."""
        table = AuditEvent.__table__
        for _ in range(5):  # another process may take the same seq; re-read the head and retry
            try:
                with self._engine.begin() as conn:
                    head = conn.execute(select(table.c.seq, table.c.hash)
                                        .order_by(table.c.seq.desc()).limit(1)).first()
                    row = {
                        "seq": (head.seq + 1) if head else 1,
                        "ts": self._clock().isoformat(timespec="milliseconds"),
                        "clinic": self._actor.clinic, "terminal": self._actor.terminal,
                        "operator": self._actor.operator, "role": self._actor.role,
                        "action": action, "object": obj, "outcome": outcome,
                        "details": json.dumps(details, ensure_ascii=False, sort_keys=True,
                                              separators=(",", ":")),
                        "prev_hash": head.hash if head else GENESIS,
                    }
                    row["hash"] = event_hash(row)
                    conn.execute(insert(table).values(**row))
                return row["seq"]
            except IntegrityError:
                continue
        raise RuntimeError("could not append audit event after 5 attempts")


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    count: int
    first_bad_seq: int | None = None
    kind: str = ""          # modified | deleted | inserted_or_reordered
    message: str = ""


def verify(engine: Engine) -> VerifyReport:
    table = AuditEvent.__table__
    prev_hash, expected_seq, count = GENESIS, 1, 0
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(table)).scalar_one()
        for r in conn.execute(select(table).order_by(table.c.seq)):
            row = dict(r._mapping)
            count += 1
            if row["seq"] != expected_seq:
                return VerifyReport(False, total, expected_seq, "deleted",
                                    f"第 {expected_seq} 条审计记录缺失（被删除）")
            if event_hash(row) != row["hash"]:
                return VerifyReport(False, total, row["seq"], "modified",
                                    f"第 {row['seq']} 条审计记录内容被改动")
            if row["prev_hash"] != prev_hash:
                return VerifyReport(False, total, row["seq"], "inserted_or_reordered",
                                    f"第 {row['seq']} 条审计记录与前一条链接不上（插入或顺序被改动）")
            prev_hash, expected_seq = row["hash"], expected_seq + 1
    return VerifyReport(True, count, message=f"审计链完整，共 {count} 条记录")
