"""The write-ahead journal: every message is committed, with its msgid, before its first byte is sent.

A retry reuses the journaled body and msgid, so the insurer (which answers a repeated msgid
with its first answer) can never be made to move money twice. Bodies hold patient data, so
they are sealed by a cipher the application supplies.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Protocol

from sqlalchemy import (Column, Integer, LargeBinary, MetaData, String, Table, insert, select,
                        update)
from sqlalchemy.engine import Engine

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

    def _aad(self, msgid: str) -> bytes:
        return f"journal_message.body|{msgid}".encode()

    def _next_msgid(self, conn, now: datetime) -> str:
        """Monotonic msgid: the stamp never goes back even if the clock does (unique forever)."""
        stamp = now.strftime("%Y%m%d%H%M%S")
        row = conn.execute(select(msgid_clock).where(msgid_clock.c.id == 1)).first()
        if row is None:
            serial = 1
            conn.execute(insert(msgid_clock).values(id=1, last_stamp=stamp, last_serial=serial))
        else:
            if stamp <= row.last_stamp:
                stamp, serial = row.last_stamp, row.last_serial + 1
                if serial > 9999:
                    stamp, serial = _add_second(stamp), 1
            else:
                serial = 1
            conn.execute(update(msgid_clock).where(msgid_clock.c.id == 1)
                         .values(last_stamp=stamp, last_serial=serial))
        return f"{self._code}{stamp}{serial:04d}"

    def record_intent(self, infno: str, visit_id: str | None,
                      build_body: Callable[[str, datetime], bytes]) -> tuple[str, bytes]:
        """Allocate a msgid and commit the full request before anything is sent."""
        now = self._clock()
        with self._engine.begin() as conn:
            msgid = self._next_msgid(conn, now)
            body = build_body(msgid, now)
            conn.execute(insert(messages).values(
                msgid=msgid, infno=infno, visit_id=visit_id, created_at=now.isoformat(),
                body=self._sealer.seal(body, self._aad(msgid)), state="pending", attempts=0))
        return msgid, body

    def _mark(self, msgid: str, **values) -> None:
        with self._engine.begin() as conn:
            conn.execute(update(messages).where(messages.c.msgid == msgid).values(**values))

    def send(self, client: InsurerClient, infno: str, msgid: str, body: bytes, *,
             maybe_delivered: bool = False) -> Answer:
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
        with self._engine.begin() as conn:
            conn.execute(update(messages).where(messages.c.msgid == msgid)
                         .values(attempts=messages.c.attempts + 1))

    def call(self, client: InsurerClient, infno: str, visit_id: str | None,
             build_body: Callable[[str, datetime], bytes]) -> Outcome:
        msgid, body = self.record_intent(infno, visit_id, build_body)
        return Outcome(msgid, self.send(client, infno, msgid, body))

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


def _add_second(stamp: str) -> str:
    return (datetime.strptime(stamp, "%Y%m%d%H%M%S") + timedelta(seconds=1)).strftime("%Y%m%d%H%M%S")

