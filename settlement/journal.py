"""The write-ahead journal: every message is committed, with its msgid, before its first byte is sent.

A retry reuses the journaled body and msgid, so the insurer (which answers a repeated msgid
with its first answer) can never be made to move money twice. Bodies hold patient data, so
they are sealed by a cipher the application supplies.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import (
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    select,
)
from sqlalchemy.engine import Engine

from . import dbapi
from .client import Answer, InsurerClient
from .errors import InsurerRefused, NetworkUnreachable, OutcomeUnknown

log = logging.getLogger(__name__)

journal_metadata = MetaData()

messages = Table(
    "journal_message", journal_metadata,
    Column("msgid", String(30), primary_key=True),
    Column("infno", String(8), nullable=False),
    Column("visit_id", String(36), index=True),
    Column("created_at", String(26), nullable=False),
    Column("body", LargeBinary, nullable=False),       # sealed request
    # pending: committed, not yet answered; answered | refused | unknown | unreachable
    Column("state", String(12), nullable=False, default="pending"),
    Column("answer", LargeBinary),                     # sealed response
    Column("answered_at", String(26)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("err_msg", String(500)),
)

msgid_clock = Table(
    "journal_msgid_clock", journal_metadata,
    Column("id", Integer, primary_key=True),
    Column("last_stamp", String(14), nullable=False),
    Column("last_serial", Integer, nullable=False),
)


# The UPDATE for each set of state columns _mark is given, in the caller's order (few, fixed).
_MARK_SQL: dict[tuple[str, ...], str] = {}


class Sealer(Protocol):
    def seal(self, plaintext: bytes, aad: bytes) -> bytes: ...
    def open(self, sealed: bytes, aad: bytes) -> bytes: ...


class PlainSealer:
    """For tests of the journal alone; the clinic passes its field cipher."""
    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        return plaintext

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        return sealed


@dataclass(frozen=True)
class Outcome:
    msgid: str
    answer: Answer


class Journal:
    def __init__(self, engine: Engine, fixmedins_code: str, sealer: Sealer,
                 clock: Callable[[], datetime] = datetime.now, retries: int = 2,
                 backoff: float = 0.5, hook: Callable[[str, str], None] | None = None):
        self._engine = engine
        self._code = fixmedins_code
        self._sealer = sealer
        self._clock = clock
        self._retries = retries
        self._backoff = backoff
        # hook(point, infno): lets the application inject crashes between journal steps.
        self._hook = hook or (lambda point, infno: None)
        self._last_clock: tuple[str, int] | None = None
        self.commits = 0  # journal transactions committed (benchmarks count them in the floor)

    def _aad(self, msgid: str) -> bytes:
        return f"journal_message.body|{msgid}".encode()

    # Each write is one transaction (dbapi.transaction) on a pooled DBAPI connection with the
    # engine's pragmas, or the one pinned for this thread's stretch of work: the journal is on
    # every call's path, so its few fixed statements skip the SQL expression layer. `commits`
    # is counted after each `with` block, i.e. once its commit went through.

    def _next_msgid(self, cur, now: datetime) -> str:
        """Monotonic msgid: the stamp never goes back even if the clock does (unique forever).

        Every advance of the clock row is conditional on the value it advances from, so another
        writer in between is noticed (no row changed) and the row is read again. The value this
        process wrote last is remembered, which usually saves the read.
        """
        stamp_now = _stamp(now)
        last = self._last_clock
        for _ in range(100):
            if last is None:
                row = cur.execute("SELECT last_stamp, last_serial FROM journal_msgid_clock "
                                  "WHERE id = 1").fetchone()
                if row is None:
                    cur.execute("INSERT INTO journal_msgid_clock (id, last_stamp, last_serial) "
                                "VALUES (1, ?, 1)", (stamp_now,))
                    self._last_clock = (stamp_now, 1)
                    return f"{self._code}{stamp_now}0001"
                last = (row[0], row[1])
            stamp, serial = _after(last, stamp_now)
            cur.execute("UPDATE journal_msgid_clock SET last_stamp = ?, last_serial = ? "
                        "WHERE id = 1 AND last_stamp = ? AND last_serial = ?",
                        (stamp, serial, last[0], last[1]))
            if cur.rowcount == 1:
                self._last_clock = (stamp, serial)
                return f"{self._code}{stamp}{serial:04d}"
            last = None  # someone else advanced it: read it again
        raise RuntimeError("msgid clock kept moving under us")

    def record_intent(self, infno: str, visit_id: str | None,
                      build_body: Callable[[str, datetime], bytes], *,
                      attempts: int = 0) -> tuple[str, bytes]:
        """Allocate a msgid and commit the full request before anything is sent.

        `attempts` counts sends begun; `call` records its first one here, in the same commit.
        """
        now = self._clock()
        with dbapi.transaction(self._engine) as cur:
            msgid = self._next_msgid(cur, now)
            body = build_body(msgid, now)
            cur.execute("INSERT INTO journal_message (msgid, infno, visit_id, created_at, body, "
                        "state, attempts) VALUES (?, ?, ?, ?, ?, 'pending', ?)",
                        (msgid, infno, visit_id, now.isoformat(),
                         self._sealer.seal(body, self._aad(msgid)), attempts))
        self.commits += 1
        return msgid, body

    _MARKABLE = frozenset({"state", "answered_at", "answer", "err_msg"})

    def _mark(self, msgid: str, **values) -> None:
        cols = tuple(values)
        sql = _MARK_SQL.get(cols)
        if sql is None:
            if not values.keys() <= self._MARKABLE:
                raise ValueError(f"not a journal state column: {sorted(cols)}")
            sql = _MARK_SQL[cols] = (f"UPDATE journal_message SET "
                                     f"{', '.join(c + ' = ?' for c in cols)} WHERE msgid = ?")
        with dbapi.transaction(self._engine) as cur:
            cur.execute(sql, (*values.values(), msgid))
        self.commits += 1

    def send(self, client: InsurerClient, infno: str, msgid: str, body: bytes, *,
             maybe_delivered: bool = False, first_counted: bool = False) -> Answer:
        """Send a journaled body; resend the same msgid on an unknown outcome, with back-off.

        `maybe_delivered`: an earlier attempt (before a crash) may have landed, so a refused
        connection now proves nothing and the message stays unknown.
        """
        last: OutcomeUnknown | None = (
            OutcomeUnknown(detail=f"{infno} {msgid}: earlier attempt unresolved")
            if maybe_delivered else None)
        for attempt in range(self._retries + 1):
            if attempt:
                time.sleep(self._backoff * (2 ** (attempt - 1)))
            if attempt or not first_counted:
                self._bump_attempts(msgid)
            self._hook("after_intent", infno)
            try:
                answer = client.send(infno, msgid, body)
            except NetworkUnreachable:
                if last is None:
                    self._mark(msgid, state="unreachable")
                    raise
                self._mark(msgid, state="unknown")
                continue  # an earlier attempt may have landed: stay unknown
            except InsurerRefused as exc:
                self._mark(msgid, state="refused", err_msg=exc.message[:500],
                           answered_at=self._clock().isoformat())
                raise
            except OutcomeUnknown as exc:
                last = exc
                self._mark(msgid, state="unknown")
                log.warning("outcome unknown infno=%s msgid=%s attempt=%d: %s",
                            infno, msgid, attempt + 1, exc.detail)
                continue
            self._hook("after_answer", infno)
            self._mark(msgid, state="answered", answered_at=self._clock().isoformat(),
                       answer=self._sealer.seal(answer.raw, self._aad(msgid) + b"|answer"))
            return answer
        assert last is not None
        raise last

    def _bump_attempts(self, msgid: str) -> None:
        with dbapi.transaction(self._engine) as cur:
            cur.execute("UPDATE journal_message SET attempts = attempts + 1 WHERE msgid = ?",
                        (msgid,))
        self.commits += 1

    def call(self, client: InsurerClient, infno: str, visit_id: str | None,
             build_body: Callable[[str, datetime], bytes]) -> Outcome:
        msgid, body = self.record_intent(infno, visit_id, build_body, attempts=1)
        return Outcome(msgid, self.send(client, infno, msgid, body, first_counted=True))

    def resend(self, client: InsurerClient, msgid: str) -> Answer:
        """Ask again with the journaled msgid and body: the insurer repeats its first answer."""
        entry = self.entry(msgid)
        if entry is None:
            raise KeyError(msgid)
        return self.send(client, entry["infno"], msgid, entry["body"],
                         maybe_delivered=entry["state"] != "unreachable")

    def abandon(self, msgid: str) -> None:
        """A message that moves no money and whose visit is gone: stop tracking it."""
        self._mark(msgid, state="abandoned")

    def for_visit(self, visit_id: str, infno: str) -> dict | None:
        """The latest message of one kind for a visit (e.g. its 2207), without its body."""
        with self._engine.connect() as conn:
            row = conn.execute(select(messages.c.msgid, messages.c.infno, messages.c.state)
                               .where(messages.c.visit_id == visit_id, messages.c.infno == infno)
                               .order_by(messages.c.msgid.desc())).first()
        return dict(row._mapping) if row else None

    def entry(self, msgid: str) -> dict | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(messages).where(messages.c.msgid == msgid)).first()
        if row is None:
            return None
        d = dict(row._mapping)
        d["body"] = self._sealer.open(d["body"], self._aad(msgid))
        if d["answer"] is not None:
            d["answer"] = self._sealer.open(d["answer"], self._aad(msgid) + b"|answer")
        return d

    def unresolved(self) -> list[dict]:
        """Messages journaled but never answered: what start-up recovery must resolve."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(messages.c.msgid, messages.c.infno, messages.c.visit_id,
                                       messages.c.state)
                                .where(messages.c.state.in_(("pending", "unknown")))).all()
        return [dict(r._mapping) for r in rows]


def _stamp(now: datetime) -> str:
    """yyyyMMddHHmmss, as strftime("%Y%m%d%H%M%S") writes it (years 1000-9999) in half the time."""
    return (f"{now.year:04d}{now.month:02d}{now.day:02d}"
            f"{now.hour:02d}{now.minute:02d}{now.second:02d}")


def _after(last: tuple[str, int], stamp_now: str) -> tuple[str, int]:
    """The (stamp, serial) that follows `last` at wall time `stamp_now`."""
    stamp, serial = last
    if stamp_now > stamp:
        return stamp_now, 1
    return (_add_second(stamp), 1) if serial >= 9999 else (stamp, serial + 1)


def _add_second(stamp: str) -> str:
    return (datetime.strptime(stamp, "%Y%m%d%H%M%S") + timedelta(seconds=1)).strftime("%Y%m%d%H%M%S")

