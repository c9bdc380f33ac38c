"""The supervisor's store: the audit bundles of many clinics in one database.

SQLite for a town, PostgreSQL for a district: the same SQLAlchemy Core code. Every bundle is
verified on the way in (against the clinic's pinned key), must agree with what is already
stored where it overlaps and link to its stored neighbours, and must not end before a signed
checkpoint the store already holds for that period (truncation). Re-importing the same bundle
changes nothing.
"""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import (
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    create_engine,
    func,
    insert,
    select,
)
from sqlalchemy.engine import Engine

from .. import audit_keys
from ..audit import GENESIS, canonical, hash_canonical, row_from_canonical
from ..audit_export import Bundle, BundleError, read_bundle, verify_bundle
from ..audit_verify import DAMAGED, VerifyReport, verify_lines

metadata = MetaData()

sup_clinic = Table(
    "sup_clinic", metadata,
    Column("clinic", String(12), primary_key=True),
    Column("name", String(100), nullable=False, default=""),
    Column("public_key", String(64), nullable=False),
    Column("key_id", String(16), nullable=False),
    Column("pinned_at", String(26), nullable=False),
    Column("pinned_by", String(20), nullable=False),     # "given" (--key) or "first_bundle"
)

sup_event = Table(
    "sup_event", metadata,
    Column("clinic", String(12), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("ts", String(26), nullable=False),
    Column("day", String(10), nullable=False),
    Column("terminal", String(40), nullable=False),
    Column("operator", String(20), nullable=False),
    Column("role", String(20), nullable=False),
    Column("action", String(40), nullable=False),
    Column("object", String(80), nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("details", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_sup_event_action_day", "action", "day"),
    Index("ix_sup_event_day", "day"),
)

sup_checkpoint = Table(
    "sup_checkpoint", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("clinic", String(12), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("head_hash", String(64), nullable=False),
    Column("ts", String(26), nullable=False),
    Column("reason", String(20), nullable=False),
    Column("key_id", String(16), nullable=False),
    Column("signature", String(128), nullable=False),
    Column("source", String(20), nullable=False),         # bundle | day_close_report
    UniqueConstraint("clinic", "seq", "signature", name="uq_sup_checkpoint"),
)

sup_import = Table(
    "sup_import", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("bundle_sha256", String(64), nullable=False, unique=True),
    Column("clinic", String(12), nullable=False),
    Column("first_seq", Integer, nullable=False),
    Column("last_seq", Integer, nullable=False),
    Column("new_events", Integer, nullable=False),
    Column("imported_at", String(26), nullable=False),
)


class ImportRefused(Exception):
    def __init__(self, message: str, kind: str, seq: int | None = None, detail: str = ""):
        super().__init__(message)
        self.message, self.kind, self.seq, self.detail = message, kind, seq, detail


@dataclass
class ImportResult:
    clinic: str
    first_seq: int
    last_seq: int
    new_events: int
    status: str                     # imported | already_imported
    notes: list[str] = field(default_factory=list)


def open_store(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, future=True)
    metadata.create_all(engine)
    return engine


def _now() -> str:
    return datetime.now().isoformat(timespec="seconds")


class Store:
    def __init__(self, url: str):
        self.url = url
        self.engine = open_store(url)

    def close(self) -> None:
        self.engine.dispose()

    # ---- keys ------------------------------------------------------------------------

    def pinned_key(self, clinic: str) -> bytes | None:
        with self.engine.connect() as conn:
            hexkey = conn.execute(select(sup_clinic.c.public_key)
                                  .where(sup_clinic.c.clinic == clinic)).scalar()
        return bytes.fromhex(hexkey) if hexkey else None

    def pin(self, conn, clinic: str, name: str, key: bytes, how: str) -> None:
        conn.execute(insert(sup_clinic).values(clinic=clinic, name=name, public_key=key.hex(),
                                               key_id=audit_keys.key_id(key),
                                               pinned_at=_now(), pinned_by=how))

    # ---- bundles -----------------------------------------------------------------------

    def import_bundle(self, path: Path, key: bytes | None = None) -> ImportResult:
        try:
            b = read_bundle(path)
        except BundleError as exc:
            raise ImportRefused(exc.message, "unreadable", None, exc.detail) from exc
        m = b.manifest
        with self.engine.connect() as conn:
            seen = conn.execute(select(sup_import.c.clinic, sup_import.c.first_seq,
                                       sup_import.c.last_seq)
                                .where(sup_import.c.bundle_sha256 == b.sha256)).first()
        if seen:
            return ImportResult(seen.clinic, seen.first_seq, seen.last_seq, 0, "already_imported")
        pinned = self.pinned_key(b.clinic)
        notes = []
        if pinned is not None and key is not None and pinned != key:
            raise ImportRefused(f"{b.clinic} 的公钥与已登记的不同", "wrong_key", None,
                                "given key differs from the pinned key")
        trusted = pinned or key
        if trusted is None:
            notes.append("first bundle of this clinic: its key was pinned from the bundle")
        report = verify_bundle(b, trusted or b.public_key, thorough=True)
        if report.status == DAMAGED:
            raise ImportRefused(report.message, report.kind, report.first_bad_seq, report.detail)
        if report.status != "ok":
            notes.append(report.detail)
        rows, hashes = self._rows(b)
        first, last = rows[0]["seq"], rows[-1]["seq"]
        with self.engine.begin() as conn:
            self._check_against_store(conn, b, rows, hashes)
            if pinned is None:
                self.pin(conn, b.clinic, m.get("clinic_name") or "", trusted or b.public_key,
                         "given" if key is not None else "first_bundle")
            existing = {s for (s,) in conn.execute(select(sup_event.c.seq).where(
                sup_event.c.clinic == b.clinic, sup_event.c.seq.between(first, last)))}
            new = [r for r in rows if r["seq"] not in existing]
            for i in range(0, len(new), 5000):
                conn.execute(insert(sup_event), new[i:i + 5000])
            self._store_checkpoints(conn, b.clinic, b.checkpoints, "bundle")
            conn.execute(insert(sup_import).values(bundle_sha256=b.sha256, clinic=b.clinic,
                                                   first_seq=first, last_seq=last,
                                                   new_events=len(new), imported_at=_now()))
        return ImportResult(b.clinic, first, last, len(new), "imported", notes)

    @staticmethod
    def _rows(b: Bundle) -> tuple[list[dict], list[str]]:
        rows, hashes = [], []
        start = int(b.manifest["first_seq"])
        for i, line in enumerate(b.lines):
            row = row_from_canonical(line)
            if canonical(row) != line or row["seq"] != start + i or row["clinic"] != b.clinic:
                raise ImportRefused(f"第 {start + i} 条审计记录格式不规范", "modified", start + i,
                                    "line is not in canonical form or names another clinic")
            h = hash_canonical(line)
            row["hash"] = h
            row["day"] = row["ts"][:10]
            rows.append(row)
            hashes.append(h)
        if not rows:
            raise ImportRefused("审计包里没有记录", "empty")
        return rows, hashes

    def _check_against_store(self, conn, b: Bundle, rows: list[dict], hashes: list[str]) -> None:
        clinic = b.clinic
        first, last = rows[0]["seq"], rows[-1]["seq"]
        stored = dict(conn.execute(select(sup_event.c.seq, sup_event.c.hash).where(
            sup_event.c.clinic == clinic, sup_event.c.seq.between(first - 1, last + 1))).all())
        for r in rows:
            h = stored.get(r["seq"])
            if h is not None and h != r["hash"]:
                raise ImportRefused(f"第 {r['seq']} 条与已导入的记录不一致", "overlap_disagrees",
                                    r["seq"], f"{clinic} seq {r['seq']} differs from the store")
        before = stored.get(first - 1)
        if before is not None and before != rows[0]["prev_hash"]:
            raise ImportRefused(f"第 {first} 条接不上已导入的第 {first - 1} 条", "overlap_disagrees",
                                first, "does not link to the stored chain")
        if first == 1 and rows[0]["prev_hash"] != GENESIS:
            raise ImportRefused("第 1 条审计记录不是链的开头", "modified", 1, "seq 1 not genesis")
        after = conn.execute(select(sup_event.c.prev_hash).where(
            sup_event.c.clinic == clinic, sup_event.c.seq == last + 1)).scalar()
        if after is not None and after != hashes[-1]:
            raise ImportRefused(f"已导入的第 {last + 1} 条接不上本包的第 {last} 条",
                                "overlap_disagrees", last, "stored successor does not link")
        # The store's signed checkpoints: inside the range they must match, past its end they
        # must not have been signed within the period the bundle claims to cover.
        until = b.manifest.get("to") or b.manifest.get("created", "")[:10]
        for cp in conn.execute(select(sup_checkpoint).where(sup_checkpoint.c.clinic == clinic)):
            if first <= cp.seq <= last:
                if hashes[cp.seq - first] != cp.head_hash:
                    raise ImportRefused(f"第 {cp.seq} 条与镇里保存的签名检查点不符", "modified",
                                        cp.seq, f"chain rewritten before checkpoint {cp.seq}")
            elif cp.seq > last and cp.ts[:10] <= until and cp.seq not in stored:
                has = conn.execute(select(func.count()).select_from(sup_event).where(
                    sup_event.c.clinic == clinic, sup_event.c.seq == cp.seq)).scalar()
                if not has:
                    raise ImportRefused(
                        f"审计包到第 {last} 条为止，但镇里保存的签名检查点记到第 {cp.seq} 条（{cp.ts[:10]}）："
                        f"末尾被截断", "truncated", last + 1,
                        f"bundle ends at {last}, stored checkpoint {cp.seq} of {cp.ts[:10]}")

    def _store_checkpoints(self, conn, clinic: str, cps: list[dict], source: str) -> int:
        have = {(s, sig) for s, sig in conn.execute(select(
            sup_checkpoint.c.seq, sup_checkpoint.c.signature).where(
                sup_checkpoint.c.clinic == clinic))}
        new = [{"clinic": clinic, "seq": c["seq"], "head_hash": c["head_hash"], "ts": c["ts"],
                "reason": c["reason"], "key_id": c["key_id"], "signature": c["signature"],
                "source": source} for c in cps if (c["seq"], c["signature"]) not in have]
        if new:
            conn.execute(insert(sup_checkpoint), new)
        return len(new)

    # ---- checkpoints carried by day-close reports ----------------------------------------

    def import_checkpoint(self, cp: dict) -> str:
        """A day-close report's checkpoint: verified with the clinic's pinned key and kept, so a
        later bundle that ends before it is refused as truncated."""
        clinic = cp["clinic"]
        key = self.pinned_key(clinic)
        if key is None:
            raise ImportRefused(f"{clinic} 尚未登记公钥，请先导入该卫生室的审计包", "unknown_clinic")
        if cp.get("key_id") != audit_keys.key_id(key):
            raise ImportRefused("检查点不是用该卫生室的密钥签的", "wrong_key", cp.get("seq"))
        if not audit_keys.signature_ok(key, cp["signature"], audit_keys.checkpoint_payload(
                clinic, cp["seq"], cp["head_hash"], cp["ts"], cp["reason"])):
            raise ImportRefused("检查点签名无效", "bad_signature", cp.get("seq"))
        with self.engine.begin() as conn:
            h = conn.execute(select(sup_event.c.hash).where(
                sup_event.c.clinic == clinic, sup_event.c.seq == cp["seq"])).scalar()
            if h is not None and h != cp["head_hash"]:
                raise ImportRefused(f"已导入的第 {cp['seq']} 条与该签名检查点不符", "modified",
                                    cp["seq"])
            n = self._store_checkpoints(conn, clinic, [cp], "day_close_report")
        return "stored" if n else "already_stored"

    # ---- reading ----------------------------------------------------------------------

    def clinics(self) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(sup_clinic)
                                                           .order_by(sup_clinic.c.clinic))]

    def events(self, first_day: str | None = None, last_day: str | None = None,
               actions: tuple[str, ...] | None = None) -> list[dict]:
        q = select(sup_event.c.clinic, sup_event.c.seq, sup_event.c.ts, sup_event.c.day,
                   sup_event.c.operator, sup_event.c.role, sup_event.c.action,
                   sup_event.c.object, sup_event.c.outcome, sup_event.c.details)
        conds = []
        if first_day:
            conds.append(sup_event.c.day >= first_day)
        if last_day:
            conds.append(sup_event.c.day <= last_day)
        if actions:
            conds.append(sup_event.c.action.in_(actions))
        if conds:
            q = q.where(and_(*conds))
        out = []
        with self.engine.connect() as conn:
            for r in conn.execute(q.order_by(sup_event.c.clinic, sup_event.c.seq)):
                d = dict(r._mapping)
                d["details"] = json.loads(d["details"])
                out.append(d)
        return out

    def verify_clinic(self, clinic: str) -> VerifyReport:
        """Re-walk what the store holds for one clinic against all its kept checkpoints."""
        from ..audit import _FIELDS
        with self.engine.connect() as conn:
            rows = conn.execute(select(*[sup_event.c[f] for f in _FIELDS], sup_event.c.hash)
                                .where(sup_event.c.clinic == clinic)
                                .order_by(sup_event.c.seq)).all()
            cps = [dict(r._mapping) for r in conn.execute(
                select(sup_checkpoint).where(sup_checkpoint.c.clinic == clinic))]
        key = self.pinned_key(clinic)
        if not rows:
            return VerifyReport("unproven", 0, message="没有记录")
        runs, start = [], 0
        for i in range(1, len(rows) + 1):
            if i == len(rows) or rows[i].seq != rows[i - 1].seq + 1:
                runs.append(rows[start:i])
                start = i
        reports = []
        for run in runs:
            a, b = run[0].seq, run[-1].seq
            lines = [canonical(dict(zip(_FIELDS, r[:-1]))) for r in run]
            inside = [c for c in cps if a <= c["seq"] <= b]
            reports.append(verify_lines(lines, start_seq=a, start_prev=run[0].prev_hash,
                                        stored=[r.hash for r in run], checkpoints=inside,
                                        public_key=key, thorough=True))
        bad = next((r for r in reports if r.status == DAMAGED), None)
        if bad is not None:
            return bad
        if len(runs) > 1 or reports[-1].status != "ok":
            gaps = [f"{x[-1].seq + 1}–{y[0].seq - 1}" for x, y in itertools.pairwise(runs)]
            return VerifyReport("unproven", len(rows), None, "",
                                "已导入部分未见改动；" + (f"第 {'、'.join(gaps)} 条尚未导入；" if gaps else "")
                                + reports[-1].message, f"gaps {gaps}; {reports[-1].detail}",
                                runs[0][0].seq, runs[-1][-1].seq)
        return reports[-1]

    def summary(self) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(sup_event.c.clinic, func.count(), func.min(sup_event.c.seq),
                                       func.max(sup_event.c.seq), func.min(sup_event.c.day),
                                       func.max(sup_event.c.day))
                                .group_by(sup_event.c.clinic).order_by(sup_event.c.clinic)).all()
            cps = dict(conn.execute(select(sup_checkpoint.c.clinic, func.max(sup_checkpoint.c.seq))
                                    .group_by(sup_checkpoint.c.clinic)).all())
        return [{"clinic": c, "events": n, "first_seq": a, "last_seq": b, "first_day": d1,
                 "last_day": d2, "last_checkpoint": cps.get(c)} for c, n, a, b, d1, d2 in rows]
