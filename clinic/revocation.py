"""Undoing money that moved: revocation (2208) of a settlement made in error, reversal (2601)
of a settlement whose outcome is unknown."""
from __future__ import annotations

import json
from dataclasses import asdict

from settlement import messages

from . import visit_state as vs
from .crypto import redact
from .errors import CounterError, NotAllowed, OutcomeUnknownProblem, RefusedByInsurer
from .roles import require


def revoke(counter, visit_id: str, reason: str) -> tuple[messages.SetlInfo, str]:
    """2208 for a same-day settlement. The insurer answers with a new setl_id and negated amounts."""
    require(counter.operator, "revoke")
    reason = reason.strip()
    if not reason:
        raise CounterError("撤销结算必须填写原因", "revoke without reason")
    v = counter.visit_row(visit_id)
    if v.state != vs.SETTLED:
        raise NotAllowed(f"这笔结算当前状态为“{vs.LABELS.get(v.state, v.state)}”，不能撤销",
                         f"revoke in state {v.state}")
    if v.business_date != counter.clock().date().isoformat():
        raise NotAllowed("只能撤销当天的结算；往日结算请联系镇社区卫生服务中心",
                         f"revoke of {v.business_date}")
    person, _ = counter.open_party(visit_id)
    sealed_reason = counter.cipher.seal_text(reason[:200], f"visit.revoke_reason|{visit_id}")
    with counter.engine.begin() as conn:
        counter.transition(conn, visit_id, vs.REVOKING, revoke_reason_sealed=sealed_reason,
                           revoked_by=counter.operator.opter)
    try:
        msgid, ans = counter.call("2208", visit_id,
                                  messages.revoke(v.setl_id, v.mdtrt_id, person.psn_no), person)
        info = messages.parse_setlinfo(ans.output, expect_setl_id=True)
    except RefusedByInsurer as exc:
        with counter.engine.begin() as conn:
            counter.transition(conn, visit_id, vs.SETTLED, message=exc.message[:500])
        counter.audit.append("revoke", visit_id, "refused", err=exc.message[:200])
        raise
    except (OutcomeUnknownProblem, messages.MessageError) as exc:
        # Stays `revoking`: start-up recovery asks again with the same msgid.
        counter.audit.append("revoke", visit_id, "unknown", reason=str(exc)[:200])
        raise
    return info, finish_revoke(counter, visit_id, msgid, info)


def finish_revoke(counter, visit_id: str, msgid: str, info: messages.SetlInfo) -> str:
    """Record a confirmed revocation and print the slip; returns the slip's path."""
    with counter.engine.begin() as conn:
        counter.transition(conn, visit_id, vs.REVOKED, revoke_setl_id=info.setl_id,
                           revoke_split_json=json.dumps(asdict(info.split)))
        sealed = conn.exec_driver_sql("SELECT revoke_reason_sealed FROM visit WHERE id = ?",
                                      (visit_id,)).scalar()
    reason = counter.cipher.open_text(sealed, f"visit.revoke_reason|{visit_id}") if sealed else ""
    person, _ = counter.open_party(visit_id)
    # The supervisor reads the reason in the audit log: kept, with the patient masked out of it.
    counter.audit.append("revoke", visit_id, "ok", msgid=msgid, setl_id=info.setl_id,
                         reason=redact(reason, person.psn_name, person.certno, person.psn_no),
                         medfee=info.split.medfee_sumamt, fund=info.split.fund_pay_sumamt,
                         acct=info.split.acct_pay, cash=info.split.psn_cash_pay)
    return counter.revocation_receipt(visit_id, msgid, info)


def reverse(counter, visit_id: str) -> None:
    """2601 for a settlement left unknown: afterwards the insurer holds no settlement for it."""
    require(counter.operator, "reverse")
    v = counter.visit_row(visit_id)
    if v.state not in (vs.UNKNOWN, vs.REVERSING):
        raise NotAllowed(f"只有结果未知的结算可以冲正，这笔为“{vs.LABELS.get(v.state, v.state)}”",
                         f"reverse in state {v.state}")
    original = counter.journal.for_visit(visit_id, "2207")
    if original is None:
        with counter.engine.begin() as conn:
            counter.transition(conn, visit_id, vs.FAILED, message="结算报文从未发出")
        return
    person, _ = counter.open_party(visit_id)
    if v.state == vs.UNKNOWN:
        with counter.engine.begin() as conn:
            counter.transition(conn, visit_id, vs.REVERSING)
    try:
        msgid, _ = counter.call("2601", visit_id,
                                messages.reverse(person.psn_no, original["msgid"], "2207"), person)
    except OutcomeUnknownProblem:
        counter.audit.append("reverse", visit_id, "unknown", omsgid=original["msgid"])
        raise
    except RefusedByInsurer as exc:
        counter.audit.append("reverse", visit_id, "refused", err=exc.message[:200])
        raise
    finish_reverse(counter, visit_id, msgid, original["msgid"])


def finish_reverse(counter, visit_id: str, msgid: str, omsgid: str) -> None:
    with counter.engine.begin() as conn:
        counter.transition(conn, visit_id, vs.REVERSED, message="已冲正，本次未收取医保费用")
    counter.journal.abandon(omsgid)
    counter.audit.append("reverse", visit_id, "ok", msgid=msgid, omsgid=omsgid)
