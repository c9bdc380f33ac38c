"""The append-only, hash-chained audit log.

Each event's hash covers its fields and the previous hash, under a domain-separation prefix, so
any edit, deletion, insertion or reordering breaks the chain at a nameable sequence number.
Signed checkpoints (the clinic's Ed25519 key over a sequence number and the head hash) make
truncation provable once a checkpoint has left the PC (day close, export). docs/audit.md.
"""
from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from sqlalchemy import insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from . import audit_keys
from .db import raw_read, raw_tx
from .models import AuditCheckpoint, AuditEvent

log = logging.getLogger(__name__)

GENESIS = "0" * 64
_DOMAIN = b"clinic-audit-event-v1\x00"
_FIELDS = ("seq", "ts", "clinic", "terminal", "operator", "role", "action", "object",
           "outcome", "details", "prev_hash")

# A new event stamped this much before the chain head is a clock set back (several processes
# may write, each with its own clock reading, hence the tolerance).
BACKWARD_TOLERANCE_S = 2.0
# Inside one process the wall clock may not drift from the monotonic clock by more than this
# between two events; more is someone setting the clock (forward or back).
DRIFT_TOLERANCE_S = 300.0
# Across processes: a first event more than this after the head is reported as a forward jump.
FORWARD_GAP_S = 30 * 24 * 3600.0

# Events whose object is a visit id carry the visit's protected context (docs/audit.md).
VISIT_ACTIONS = frozenset({"prescription", "formulary_override", "visit_register", "fees_upload",
                           "presettle", "settle", "revoke", "reverse", "self_pay",
                           "visit_cancel", "visit_failed", "receipt_print", "receipt_reprint",
                           "recovery"})
ITEM_ACTIONS = frozenset({"prescription", "settle", "self_pay", "revoke"})
# The visit columns an event's context is made from; none of them changes after the insert.
_CONTEXT_COLUMNS = ("psn_ref", "cert_type", "insutype", "diagnosis", "business_date", "items_json")


# json.dumps(..., ensure_ascii=False, separators=(",", ":")) [+ sort_keys], made once: dumps
# with any non-default argument builds a new encoder on every call.
_CANONICAL = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_DETAILS = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def canonical(row: dict) -> bytes:
    """The exact bytes an event's hash covers; also one line of an export bundle."""
    return _CANONICAL.encode([row[f] for f in _FIELDS]).encode("utf-8")


def hash_canonical(canon: bytes) -> str:
    return hashlib.sha256(_DOMAIN + canon).hexdigest()


def event_hash(row: dict) -> str:
    return hash_canonical(canonical(row))


def row_from_canonical(canon: bytes) -> dict:
    values = json.loads(canon)
    if not isinstance(values, list) or len(values) != len(_FIELDS):
        raise ValueError("not an audit event line")
    return dict(zip(_FIELDS, values))


@dataclass(frozen=True)
class Actor:
    clinic: str
    terminal: str
    operator: str
    role: str
    name: str = ""   # the operator's name, recorded in every event beside their id

    @classmethod
    def acting(cls, settings, operator) -> "Actor":
        """This terminal of this clinic, acting for a logged-in operator."""
        return cls(settings.fixmedins_code, settings.terminal, operator.opter, operator.role,
                   operator.opter_name)


def _dumps(details: dict) -> str:
    return _DETAILS.encode(details)


_COLUMNS = ("seq", "ts", "clinic", "terminal", "operator", "role", "action", "object",
            "outcome", "details", "prev_hash", "hash")
_INSERT = (f"INSERT INTO audit_event ({', '.join(_COLUMNS)}) "
           f"VALUES ({', '.join('?' for _ in _COLUMNS)})")


class AuditLog:
    def __init__(self, engine: Engine, actor: Actor, clock=datetime.now):
        self._engine = engine
        self._actor = actor
        self._clock = clock
        self._counter = None          # set by start(): the visit context and the keys
        self._last_wall: datetime | None = None
        self._last_mono = 0.0
        # The chain head this process wrote last: read again only when another writer got in
        # first (the seq primary key refuses the stale one), which saves a query per event.
        self._head: _Head | None = None
        self._contexts: dict[tuple, dict] = {}  # a visit's context does not change once opened
        self._rows: dict[str, dict] = {}  # context columns of visits this process inserted

    @property
    def actor(self) -> Actor:
        return self._actor

    # ---- appending -----------------------------------------------------------------------

    def append(self, action: str, obj: str = "", outcome: str = "ok", **details) -> int:
        """Append one event; details must already hold only protected patient identifiers."""
        if action in VISIT_ACTIONS and obj and self._counter is not None:
            details = {**details, **self._visit_context(action, obj)}
        for _ in range(5):  # another process may take the same seq; re-read the head and retry
            try:
                with raw_tx(self._engine) as cur:
                    head = self._head
                    if head is None:
                        last = cur.execute("SELECT seq, hash, ts FROM audit_event "
                                           "ORDER BY seq DESC LIMIT 1").fetchone()
                        head = _Head(*last) if last else None
                    now = self._clock()
                    mono = time.monotonic()
                    jump = self._clock_jump(head, now, mono)
                    rows = []
                    if jump:
                        rows.append(self._row(head, "clock_jump", "", "detected", jump, now))
                        head = _Head(rows[-1]["seq"], rows[-1]["hash"], rows[-1]["ts"])
                    rows.append(self._row(head, action, obj, outcome, details, now))
                    cur.executemany(_INSERT, [tuple(r[c] for c in _COLUMNS) for r in rows])
                self._last_wall, self._last_mono = now, mono
                self._head = _Head(rows[-1]["seq"], rows[-1]["hash"], rows[-1]["ts"])
                return rows[-1]["seq"]
            except (IntegrityError, sqlite3.IntegrityError):
                self._head = None
                continue
        raise RuntimeError("could not append audit event after 5 attempts")

    def _row(self, head, action: str, obj: str, outcome: str, details: dict, now: datetime) -> dict:
        row = {
            "seq": (head.seq + 1) if head else 1,
            "ts": now.isoformat(timespec="milliseconds"),
            "clinic": self._actor.clinic, "terminal": self._actor.terminal,
            "operator": self._actor.operator, "role": self._actor.role,
            "action": action, "object": obj[:80], "outcome": outcome,
            "details": _dumps({**details, "operator_name": self._actor.name}
                              if self._actor.name else details),
            "prev_hash": head.hash if head else GENESIS,
        }
        row["hash"] = event_hash(row)
        return row

    def _clock_jump(self, head, now: datetime, mono: float) -> dict | None:
        if self._last_wall is not None:
            drift = (now - self._last_wall).total_seconds() - (mono - self._last_mono)
            if abs(drift) > DRIFT_TOLERANCE_S:
                return {"from": self._last_wall.isoformat(timespec="milliseconds"),
                        "to": now.isoformat(timespec="milliseconds"),
                        "seconds": round(drift, 3), "seen_by": "monotonic"}
        if head is not None:
            try:
                before = datetime.fromisoformat(head.ts)
            except ValueError:
                return None
            gap = (now - before).total_seconds()
            if gap < -BACKWARD_TOLERANCE_S or (self._last_wall is None and gap > FORWARD_GAP_S):
                return {"from": head.ts, "to": now.isoformat(timespec="milliseconds"),
                        "seconds": round(gap, 3), "seen_by": "chain_head"}
        return None

    def _visit_context(self, action: str, visit_id: str) -> dict:
        """The visit's protected context: keyed hashes, codes and counts, never a name or number."""
        key = (visit_id, action in ITEM_ACTIONS)
        if key not in self._contexts:
            ctx = self._read_visit_context(action, visit_id)
            if ctx and "context" not in ctx:
                if len(self._contexts) > 256:  # a long day at one counter stays small
                    self._contexts.clear()
                self._contexts[key] = ctx
            return ctx
        return self._contexts[key]

    def remember_visit(self, visit_id: str, row: dict) -> None:
        """The visit row this process has just inserted (committed): its events' context is
        made from it without reading it back."""
        if len(self._rows) > 256:  # a long day at one counter stays small
            self._rows.clear()
        self._rows[visit_id] = {c: row.get(c) for c in _CONTEXT_COLUMNS}

    def _read_visit_context(self, action: str, visit_id: str) -> dict:
        try:
            v = self._rows.get(visit_id)
            if v is None:
                with raw_read(self._engine) as cur:
                    found = cur.execute(f"SELECT {', '.join(_CONTEXT_COLUMNS)} FROM visit "
                                        "WHERE id = ?", (visit_id,)).fetchone()
                if found is None:
                    return {}
                v = dict(zip(_CONTEXT_COLUMNS, found))
            ctx: dict = {"psn_ref": v["psn_ref"] or "", "cert_type": v["cert_type"] or "",
                         "insutype": v["insutype"] or "", "diagnosis": v["diagnosis"] or "",
                         "business_date": v["business_date"]}
            if action in ITEM_ACTIONS:
                ctx["rx"] = [self._item(i) for i in json.loads(v["items_json"] or "[]")]
            town = getattr(self, "_town_key", None)
            if town is not None:
                person, cred = self._counter.open_party(visit_id)
                if person.psn_no or person.certno:
                    ctx["psn_town"] = audit_keys.town_ref(town, "psn",
                                                          person.psn_no or person.certno)
                if cred.mdtrt_cert_no:
                    ctx["card_town"] = audit_keys.town_ref(town, "cred", cred.mdtrt_cert_no)
            return ctx
        except Exception as exc:  # noqa: BLE001 (the event must never be lost to its context)
            log.warning("audit context for %s unavailable: %s", action, type(exc).__name__)
            return {"context": "unavailable"}

    def _item(self, item: dict) -> dict:
        out = {"code": item["code"], "qty": item["qty"], "days": item["days"],
               "price_fen": item["price_fen"]}
        drug = None
        formulary = getattr(self._counter, "formulary", None)
        if formulary is not None:
            drug = formulary.by_code(item["code"])
        if drug is not None:
            out["atc"] = drug.atc
            out["class"] = drug.chrgitm_lv
            out["max_daily"] = drug.max_daily
            out["pack"] = drug.pack
            if drug.restrict_dx:  # payment restricted to these diagnoses (lmt_used_flag)
                out["restrict_dx"] = list(drug.restrict_dx)
        return out

    # ---- application life, configuration, formulary, export ------------------------------

    def start(self, counter) -> int:
        """Application start: remember the counter for visit context, then record the start."""
        self._counter = counter
        settings = counter.settings
        try:
            self._town_key = audit_keys.town_key(settings.keys_dir, counter.cipher)
        except (OSError, ValueError, InvalidTag) as exc:
            log.warning("town pseudonym key unusable: %s", exc)
            self._town_key = None
        formulary = getattr(counter, "formulary", None)
        return self.append("app_start", settings.terminal, "ok",
                           training=bool(settings.training),
                           formulary_version=str(getattr(formulary, "version", "")),
                           town_key=self._town_key is not None)

    def stop(self) -> int | None:
        """Application stop: record it and sign a checkpoint over the head (docs/audit.md)."""
        try:
            seq = self.append("app_stop", self._actor.terminal, "ok")
            if self._counter is not None:
                self.checkpoint(self._counter.settings.keys_dir, "app_stop")
            return seq
        except Exception as exc:  # noqa: BLE001 (closing must not fail over the audit)
            log.error("audit stop not recorded: %s", exc)
            return None

    def config_change(self, key: str, old, new, source: str = "") -> int:
        """A setting changed (by the settings screen, a config file, an administrator)."""
        return self.append("config_change", key, "ok", old=old, new=new, source=source)

    def formulary_change(self, old_version: str, new_version: str, *, signer: str = "",
                         digest: str = "", added: int = 0, removed: int = 0,
                         changed: int = 0, outcome: str = "ok", reason: str = "") -> int:
        """A formulary (drug list or rule book) was installed, refused or rolled back."""
        return self.append("formulary_change", new_version, outcome, old_version=old_version,
                           signer=signer, digest=digest, added=added, removed=removed,
                           changed=changed, reason=reason)

    # ---- checkpoints ---------------------------------------------------------------------

    def checkpoint(self, keys_dir: Path, reason: str, seq: int | None = None) -> dict | None:
        """Sign (seq, head hash) with the clinic key; seq defaults to the chain head."""
        return make_checkpoint(self._engine, self._actor.clinic, keys_dir, reason, seq,
                               now=self._clock())


class _Head:
    def __init__(self, seq: int, hash_: str, ts: str):
        self.seq, self.hash, self.ts = seq, hash_, ts


def make_checkpoint(engine: Engine, clinic: str, keys_dir: Path, reason: str,
                    seq: int | None = None, *, now: datetime | None = None) -> dict | None:
    key = audit_keys.load_or_create_signing_key(keys_dir)
    ev = AuditEvent.__table__
    with engine.begin() as conn:
        q = select(ev.c.seq, ev.c.hash)
        q = q.where(ev.c.seq == seq) if seq is not None else q.order_by(ev.c.seq.desc()).limit(1)
        head = conn.execute(q).first()
        if head is None:
            return None
        ts = (now or datetime.now()).isoformat(timespec="milliseconds")
        cp = {"clinic": clinic, "seq": head.seq, "head_hash": head.hash, "ts": ts,
              "reason": reason, "key_id": audit_keys.key_id(audit_keys.public_raw(key))}
        cp["signature"] = audit_keys.sign(key, audit_keys.checkpoint_payload(
            clinic, head.seq, head.hash, ts, reason))
        conn.execute(insert(AuditCheckpoint.__table__).values(**cp))
    return {**cp, "public_key": audit_keys.public_hex(key)}


def checkpoints(engine: Engine, first: int | None = None, last: int | None = None) -> list[dict]:
    t = AuditCheckpoint.__table__
    q = select(t.c.clinic, t.c.seq, t.c.head_hash, t.c.ts, t.c.reason, t.c.key_id, t.c.signature)
    if first is not None:
        q = q.where(t.c.seq >= first)
    if last is not None:
        q = q.where(t.c.seq <= last)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q.order_by(t.c.seq, t.c.id))]


# ---- verification (the walk itself lives in audit_verify) -------------------------------

def verify(engine: Engine, public_key: bytes | None = None,
           extra_checkpoints: list[dict] | None = None, *, thorough: bool = False):
    """Verify the clinic database's chain against its checkpoints (and any carried-off ones).

    Returns an audit_verify.VerifyReport: status ok | unproven | damaged."""
    from .audit_verify import verify_database
    return verify_database(engine, public_key, extra_checkpoints or [], thorough=thorough)


def __getattr__(name: str):
    if name == "VerifyReport":
        from .audit_verify import VerifyReport
        return VerifyReport
    raise AttributeError(name)
