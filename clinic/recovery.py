"""Start-up recovery: resolve every visit a crash or a lost answer left in flight, before the
counter opens, and say in plain Chinese what happened to each."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select

from settlement import messages
from settlement.errors import InsurerRefused, NetworkUnreachable, OutcomeUnknown

from . import visit_state as vs
from .errors import CounterError
from .models import Visit
from .revocation import finish_reverse, finish_revoke

log = logging.getLogger(__name__)

# Stopped before settling, or unresolved. Found by one scan of `visit` at start: an index on
# every state would cost each transition of each visit a write (only vs.UNRESOLVED has one).
IN_FLIGHT = (vs.NEW, vs.REGISTERED, vs.FEES_UPLOADED, vs.PRESETTLED, *vs.UNRESOLVED)


@dataclass(frozen=True)
class RecoveryNote:
    visit_id: str
    before: str
    after: str
    message: str          # Chinese, for the operator


def recover(counter) -> list[RecoveryNote]:
    """Ask the insurer again, with the journaled msgid, about everything left open."""
    with counter.engine.connect() as conn:
        open_visits = conn.execute(select(Visit.id, Visit.state)
                                   .where(Visit.state.in_(IN_FLIGHT))
                                   .order_by(Visit.created_at)).all()
    notes = [_resolve(counter, vid, state) for vid, state in open_visits]
    notes += _print_missing_receipts(counter)
    _abandon_orphans(counter)
    for n in notes:
        counter.audit.append("recovery", n.visit_id, n.after, before=n.before)
    return notes


def _resolve(counter, visit_id: str, state: str) -> RecoveryNote:
    if state in (vs.SETTLING, vs.UNKNOWN):
        return _resolve_settle(counter, visit_id, state)
    if state == vs.REVOKING:
        return _resolve_message(counter, visit_id, state, "2208")
    if state == vs.REVERSING:
        return _resolve_message(counter, visit_id, state, "2601")
    return _withdraw(counter, visit_id, state)


def _withdraw(counter, visit_id: str, state: str) -> RecoveryNote:
    """Stopped before settling: no money moved. Withdraw the registration if the insurer has
    one (learning its mdtrt_id from the journaled 2201 if the answer was never recorded)."""
    note = "上次程序中断时有一笔就诊未结算（未扣费），请重新办理。"
    v = counter.visit_row(visit_id)
    mdtrt_id = v.mdtrt_id
    reg = counter.journal.for_visit(visit_id, "2201")
    try:
        if not mdtrt_id and reg is not None:
            mdtrt_id = messages.parse_registration(
                counter.journal.resend(counter.client, reg["msgid"]).output)
            with counter.engine.begin() as conn:
                conn.execute(Visit.__table__.update().where(Visit.id == visit_id)
                             .values(mdtrt_id=mdtrt_id))
        counter.cancel_visit(visit_id, "程序中断，已撤销挂号")
        return RecoveryNote(visit_id, state, vs.CANCELLED, note)
    except (CounterError, InsurerRefused, NetworkUnreachable, OutcomeUnknown,
            messages.MessageError) as exc:
        log.warning("could not withdraw visit=%s: %s", visit_id, getattr(exc, "detail", exc))
    with counter.engine.begin() as conn:
        counter.transition(conn, visit_id, vs.FAILED, message="程序中断，本次就诊未结算，请重新办理")
    return RecoveryNote(visit_id, state, vs.FAILED, note)


def _resolve_settle(counter, visit_id: str, state: str) -> RecoveryNote:
    original = counter.journal.for_visit(visit_id, "2207")
    if original is None:  # crashed between `settling` and the journal write: never sent
        with counter.engine.begin() as conn:
            counter.transition(conn, visit_id, vs.FAILED, message="结算报文未发出")
        return RecoveryNote(visit_id, state, vs.FAILED, "有一笔结算在发出前中断，未扣费，请重新办理。")
    try:
        answer = counter.journal.resend(counter.client, original["msgid"])
        info = messages.parse_setlinfo(answer.output, expect_setl_id=True)
    except InsurerRefused as exc:
        with counter.engine.begin() as conn:
            counter.transition(conn, visit_id, vs.FAILED, message=exc.message[:500])
        return RecoveryNote(visit_id, state, vs.FAILED, f"医保核实：该笔结算未成功（{exc.message}），未扣费。")
    except (OutcomeUnknown, NetworkUnreachable, messages.MessageError) as exc:
        log.warning("settlement still unknown visit=%s: %s", visit_id, getattr(exc, "detail", exc))
        if state == vs.SETTLING:
            with counter.engine.begin() as conn:
                counter.transition(conn, visit_id, vs.UNKNOWN, message="结果未知，待核实")
        return RecoveryNote(visit_id, state, vs.UNKNOWN,
                            "有一笔结算结果仍未知（医保网络不通）。请勿重复收费，联网后系统会再次核实。")
    counter.complete_settlement(visit_id, original["msgid"], info)
    return RecoveryNote(visit_id, state, vs.SETTLED, "医保核实：上次中断的结算已成功，收据已补打。")


def _resolve_message(counter, visit_id: str, state: str, infno: str) -> RecoveryNote:
    entry = counter.journal.for_visit(visit_id, infno)
    back = vs.SETTLED if infno == "2208" else vs.UNKNOWN
    if entry is None:
        with counter.engine.begin() as conn:
            counter.transition(conn, visit_id, back)
        return RecoveryNote(visit_id, state, back, "撤销/冲正未发出，结算保持原状。")
    try:
        answer = counter.journal.resend(counter.client, entry["msgid"])
    except InsurerRefused as exc:
        with counter.engine.begin() as conn:
            counter.transition(conn, visit_id, back, message=exc.message[:500])
        return RecoveryNote(visit_id, state, back, f"医保拒绝了撤销/冲正：{exc.message}")
    except (OutcomeUnknown, NetworkUnreachable) as exc:
        log.warning("%s still unknown visit=%s: %s", infno, visit_id, exc.detail)
        return RecoveryNote(visit_id, state, state, "撤销/冲正结果仍未知，联网后系统会再次核实。")
    if infno == "2208":
        finish_revoke(counter, visit_id, entry["msgid"],
                      messages.parse_setlinfo(answer.output, expect_setl_id=True))
        return RecoveryNote(visit_id, state, vs.REVOKED, "医保核实：撤销已成功。")
    original = counter.journal.for_visit(visit_id, "2207")
    finish_reverse(counter, visit_id, entry["msgid"], original["msgid"] if original else "")
    return RecoveryNote(visit_id, state, vs.REVERSED, "医保核实：冲正已成功，该笔未扣费。")


def _print_missing_receipts(counter) -> list[RecoveryNote]:
    """Settled and committed, but the power went before the receipt was written."""
    with counter.engine.connect() as conn:
        rows = conn.execute(select(Visit.id).where(Visit.state == vs.SETTLED,
                                                   Visit.receipt_path.is_(None))).all()
    notes = []
    for (visit_id,) in rows:
        counter.reprint_receipt(visit_id)
        notes.append(RecoveryNote(visit_id, vs.SETTLED, vs.SETTLED,
                                  "有一笔已成功的结算在打印收据前中断，收据已补打。"))
    return notes


def _abandon_orphans(counter) -> None:
    """Lookups and sign-ins left pending by a crash move no money; stop tracking them."""
    for m in counter.journal.unresolved():
        if m["infno"] in ("2207", "2208", "2601"):
            continue
        counter.journal.abandon(m["msgid"])
