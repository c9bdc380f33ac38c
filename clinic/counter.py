"""The counter workflow: one visit from credential to receipt, the same path for CLI, GUI and tests.

Every call to the insurer goes through the journal (msgid committed before the first byte) and
every step appends an audit event. Patient identifiers reach the database only sealed.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from dataclasses import asdict, fields, replace
from datetime import date, datetime
from typing import Any, Callable

from cryptography.exceptions import InvalidTag
from sqlalchemy import select
from sqlalchemy.exc import NoResultFound

from cardreader.card import CardData
from formulary import rules
from formulary.catalog import Formulary
from formulary.diagnoses import DiagnosisList
from settlement import messages, wire
from settlement.client import Answer, InsurerClient
from settlement.errors import (GatewayRejected, InsurerRefused, NetworkUnreachable,
                               OutcomeUnknown)
from settlement.journal import Journal
from settlement.values import Credential, FeeLine, Person, SetlInfo

from . import visit_state as vs
from .audit import Actor, AuditLog
from .config import Settings, assert_training_isolated
from .crashpoints import crash_point
from .crypto import FieldCipher, redact
from .db import open_database, pinned, raw_read, raw_tx
from .domain import Operator, RxItem, Settlement, Split, VisitResult
from .errors import (BlockedByFormulary, CardProblem, CounterError, NetworkProblem, NotAllowed,
                     OutcomeUnknownProblem, RefusedByInsurer)
from .models import SignIn, Visit
from .receipt import ReceiptHeader, receipt_lines, write_pdf

log = logging.getLogger(__name__)


UNTRUSTED_ANSWER = "医保返回的结算结果不完整，结果未知。请勿重复收费，系统会自动向医保核实。"


def _now() -> datetime:
    return datetime.now()


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _flat(obj) -> dict[str, Any]:
    """asdict() for a dataclass whose fields are plain values (no deep copy on every call)."""
    names = _FIELD_NAMES.get(type(obj))
    if names is None:
        names = _FIELD_NAMES[type(obj)] = tuple(f.name for f in fields(obj))
    return {n: getattr(obj, n) for n in names}


_VISIT_COLUMNS = frozenset(Visit.__table__.c.keys())


class Counter:
    def __init__(self, settings: Settings, session, *,
                 formulary: Formulary | None = None, clock: Callable[[], datetime] = _now):
        """`session` is a logged-in clinic.auth.Session: who acts (their id and name go into
        every insurer message and audit event) and the data key their password unwrapped."""
        assert_training_isolated(settings)
        self.settings = settings
        self.operator: Operator = session.operator
        self.clock = clock
        self.engine = open_database(settings.db_path)
        self.cipher = FieldCipher(session.data_key)
        self._fixed_formulary = formulary
        self._formulary_day: tuple[date, Formulary] | None = None
        self.institution = wire.Institution(settings.fixmedins_code, settings.fixmedins_name,
                                            settings.mdtrtarea_admvs)
        self.journal = Journal(self.engine, settings.fixmedins_code, self.cipher, clock=clock,
                               hook=crash_point)
        self.client = InsurerClient(settings.network_url, paas_id=settings.paas_id,
                                    paas_token=settings.paas_token,
                                    timeout=settings.timeout_seconds)
        self.audit = AuditLog(self.engine, Actor.acting(settings, self.operator), clock)
        self._sign_no = ""
        self._sign_day: date | None = None
        self._parties: dict[str, tuple[Person, Credential]] = {}  # visits this process opened
        self._states: dict[str, str] = {}  # the state this process last wrote, per visit
        self.audit.start(self)  # app_start event; visit events get their protected context

    # Per-process memos, made on first use: term -> drug for one formulary version, and what
    # this process itself wrote of its open visits (items, mdtrt_id), which never change.
    _resolved: tuple[Formulary, dict] | None = None
    _written: dict[str, dict[str, Any]] | None = None

    @property
    def formulary(self) -> Formulary:
        """The signed formulary version in force today (the town may issue one that starts
        tomorrow); an explicitly given one wins, for tests and tools."""
        if self._fixed_formulary is not None:
            return self._fixed_formulary
        today = self.clock().date()
        if self._formulary_day is None or self._formulary_day[0] != today:
            from formulary.errors import FormularyError
            from formulary.store import FormularyStore
            store = FormularyStore.open(self.settings.home / "formulary",
                                        os.environ.get("CLINIC_FORMULARY_KEYS"))
            try:
                self._formulary_day = (today, store.in_force(today))
            except FormularyError as exc:
                raise BlockedByFormulary(exc.message, exc.detail) from exc
        return self._formulary_day[1]

    def close(self) -> None:
        self.audit.stop()  # app_stop event and a signed checkpoint over the head
        self.client.close()
        self.engine.dispose()

    # ---- talking to the insurer -------------------------------------------------------

    def call(self, infno: str, visit_id: str | None, input_: dict[str, Any],
             person: Person | None = None) -> tuple[str, Answer]:
        """One journaled call; the insurer's kinds of failure become the counter's typed errors."""
        if infno != "9001" and (not self._sign_no or self._sign_day != self.clock().date()):
            # The platform refuses everything but 9001 without a sign_no, and a sign-in lasts
            # one business day: a counter left running past midnight signs in again.
            self.ensure_signed_in()

        def build(msgid: str, now: datetime) -> bytes:
            return wire.dumps(wire.envelope(
                infno=infno, msgid=msgid, institution=self.institution, opter=self.operator.opter,
                opter_name=self.operator.opter_name, now=now, input=input_, sign_no=self._sign_no,
                insuplc_admdvs=person.insuplc_admdvs if person else ""))
        try:
            outcome = self.journal.call(self.client, infno, visit_id, build)
        except NetworkUnreachable as exc:
            log.warning("network unreachable infno=%s: %s", infno, exc.detail)
            raise NetworkProblem(exc.message, exc.detail) from exc
        except OutcomeUnknown as exc:
            raise OutcomeUnknownProblem(exc.message, exc.detail) from exc
        except InsurerRefused as exc:
            raise RefusedByInsurer(f"医保中心拒绝：{exc.message}", exc.detail) from exc
        except GatewayRejected as exc:
            raise RefusedByInsurer(exc.message, exc.detail) from exc
        return outcome.msgid, outcome.answer

    def ensure_signed_in(self) -> str:
        """Sign in to the network (9001) once per business day and operator."""
        today = self.clock().date().isoformat()
        with self.engine.connect() as conn:
            row = conn.execute(select(SignIn.sign_no).where(SignIn.business_date == today,
                                                            SignIn.opter == self.operator.opter,
                                                            SignIn.signed_out_at.is_(None))
                               .order_by(SignIn.id.desc())).first()
        if row:
            self._sign_no, self._sign_day = row.sign_no, self.clock().date()
            return self._sign_no
        try:
            ip = socket.gethostbyname(socket.gethostname())
        except OSError:
            ip = "127.0.0.1"
        _, ans = self.call("9001", None, messages.sign_in(self.operator.opter, "", ip))
        sign_no, sign_time = messages.parse_sign_in(ans.output)
        with self.engine.begin() as conn:
            conn.execute(SignIn.__table__.insert().values(
                business_date=today, opter=self.operator.opter, sign_no=sign_no,
                sign_time=sign_time))
        self._sign_no, self._sign_day = sign_no, self.clock().date()
        self.audit.append("sign_in", sign_no)
        return sign_no

    def forget_sign_in(self) -> None:
        self._sign_no = ""

    # ---- the patient -------------------------------------------------------------------

    def read_card(self, reader_url: str) -> CardData:
        from cardreader.driver import CardReader, CardReaderError
        try:
            with CardReader(reader_url) as reader:
                card = reader.read_card()
        except CardReaderError as exc:
            self.audit.append("card_read", "", "error", detail=exc.detail[:200])
            raise CardProblem(exc.message, exc.detail) from exc
        self.audit.append("card_read", "", "ok", card_ref=self.cipher.keyed_hash(card.card_no))
        return card

    @staticmethod
    def credential_from_card(card: CardData) -> Credential:
        return Credential("03", card.card_no, card.card_sn, card.certno, card.name)

    @staticmethod
    def credential_from_id_number(raw: str) -> Credential:
        from cardreader.idnumber import IdNumberError, normalize
        try:
            idno = normalize(raw)
        except IdNumberError as exc:
            raise CardProblem(exc.message, exc.detail) from exc
        return Credential("02", idno, certno=idno)

    def lookup(self, cred: Credential) -> Person:
        _, ans = self.call("1101", None, messages.person_query(cred, self.clock()))
        person = messages.parse_person(ans.output)
        self.audit.append("person_lookup", "", "ok", psn_ref=self.cipher.keyed_hash(person.psn_no),
                          cert_type=cred.mdtrt_cert_type, insutype=person.insutype)
        return person

    # ---- the prescription --------------------------------------------------------------

    def resolve_items(self, spec: list[tuple[str, int, int | None]]) -> tuple[RxItem, ...]:
        """(drug term or code, quantity, days or None) -> priced items; unknown terms raise."""
        from formulary.catalog import DrugLookupError
        formulary = self.formulary
        if self._resolved is None or self._resolved[0] is not formulary:
            self._resolved = (formulary, {})  # a Formulary is immutable: memo per version
        memo = self._resolved[1]
        items = []
        for term, qty, days in spec:
            drug = memo.get(term)
            if drug is None:
                try:
                    drug = formulary.by_code(term) or formulary.resolve(term)
                except DrugLookupError as exc:
                    raise BlockedByFormulary(exc.message, exc.detail) from exc
                if len(memo) < 4096:
                    memo[term] = drug
            items.append(RxItem(drug.code, drug.name, qty, days or drug.std_days * qty,
                                drug.price_fen, drug.unit))
        return tuple(items)

    def check(self, items: tuple[RxItem, ...], diagnoses: tuple[str, ...] = (),
              emergency: bool = False, person: Person | None = None) -> list[rules.Verdict]:
        """The formulary's verdicts, with the patient's age, sex and this clinic's history of them."""
        lines = [rules.RxLine(it.code, it.qty, it.days) for it in items]
        today = self.clock().date()
        return rules.check(lines, self.formulary, emergency=emergency, diagnoses=diagnoses,
                           age=person.age if person else None,
                           sex=person.gend or None if person else None,
                           history=self.history(person, today) if person else (),
                           today=today)

    def history(self, person: Person, today: date | None = None) -> list[rules.PriorSupply]:
        """What this clinic dispensed to the patient before (settled visits, on or before
        `today`), for repeat checks: per drug, the supply that lasts longest.

        The repeat rule only ever looks at the longest-lasting supply of an ingredient, so
        SQLite keeps one row per drug (max() of end day then dispensing day, as the rule ranks
        them, takes its row's bare columns along): years of visits are scanned in C, and
        Python sees a few rows, not one per visit.
        """
        today = today or self.clock().date()
        with raw_read(self.engine) as cur:
            rows = cur.execute(
                "SELECT json_extract(i.value, '$.code') AS code, v.business_date, "
                "json_extract(i.value, '$.days'), "
                "max(date(v.business_date, '+' || json_extract(i.value, '$.days') || ' days') "
                "|| v.business_date) "
                "FROM visit AS v, json_each(v.items_json) AS i "
                "WHERE v.psn_ref = ? AND v.state = ? AND v.business_date <= ? GROUP BY code",
                (self.cipher.keyed_hash(person.psn_no), vs.SETTLED, today.isoformat())).fetchall()
        return [rules.PriorSupply(code, date.fromisoformat(day), days)
                for code, day, days, _ in rows]

    def unresolved_verdicts(self, verdicts, overrides: dict[str, str]) -> list[rules.Verdict]:
        """Blocks always stop; a warning stops unless overridden with a reason."""
        return [v for v in verdicts if v.outcome == "block"
                or (v.outcome == "warn" and not overrides.get(v.rule_id))]

    # ---- the visit ---------------------------------------------------------------------

    def transition(self, conn, visit_id: str, to_state: str, **values) -> None:
        """Move a visit to `to_state` if the state machine allows it from where it is.

        `conn`: a SQLAlchemy connection in a transaction, or a DBAPI cursor in one (raw_tx)."""
        run = getattr(conn, "exec_driver_sql", None) or conn.execute
        cols = sorted(values)
        if not _VISIT_COLUMNS.issuperset(cols):  # names come from this module, never from input
            raise ValueError(f"not visit columns: {cols}")
        sets = "UPDATE visit SET state = ?" + "".join(f", {c} = ?" for c in cols) + " WHERE id = ?"
        args = (to_state, *(values[c] for c in cols), visit_id)
        current = self._states.get(visit_id)
        # The state this process wrote last, if any, made a condition of the UPDATE; another
        # writer in between changes no row, and the state is then read again.
        if current is not None and to_state in vs.ALLOWED.get(current, ()):
            if run(sets + " AND state = ?", (*args, current)).rowcount != 1:
                current = None
        else:
            current = None
        if current is None:
            row = run("SELECT state FROM visit WHERE id = ?", (visit_id,)).fetchone()
            if row is None:
                raise NoResultFound(f"no visit {visit_id}")
            current = row[0]
            vs.check(current, to_state)
            run(sets, args)
        run("INSERT INTO visit_transition (visit_id, from_state, to_state, at) VALUES (?, ?, ?, ?)",
            (visit_id, current, to_state, self.clock().isoformat()))
        self._states[visit_id] = to_state

    def _advance(self, visit_id: str, to_state: str, **values) -> None:
        """One committed transition, on a pooled DBAPI connection (the visit's own path)."""
        with raw_tx(self.engine) as cur:
            self.transition(cur, visit_id, to_state, **values)

    def seal_party(self, visit_id: str, person: Person, cred: Credential) -> bytes:
        if len(self._parties) > 256:  # a day at one counter; older visits unseal on demand
            self._parties.clear()
            self._states.clear()
        self._parties[visit_id] = (person, cred)
        payload = {"person": {**asdict(person), "brdy": person.brdy.isoformat() if person.brdy else None},
                   "cred": asdict(cred)}
        return self.cipher.seal_text(json.dumps(payload, ensure_ascii=False),
                                     f"visit.person_sealed|{visit_id}")

    def open_party(self, visit_id: str) -> tuple[Person, Credential]:
        """The visit's patient and credential: from this process's memory, else unsealed."""
        if visit_id in self._parties:
            return self._parties[visit_id]
        with self.engine.connect() as conn:
            sealed = conn.execute(select(Visit.person_sealed).where(Visit.id == visit_id)).scalar_one()
        try:
            payload = json.loads(self.cipher.open_text(sealed, f"visit.person_sealed|{visit_id}"))
        except (InvalidTag, ValueError) as exc:  # altered, moved from another row, or another key
            raise CounterError("这笔就诊的患者资料打不开：数据被改动过，或不是本机的数据。请联系技术支持",
                               f"visit {visit_id} person_sealed: {type(exc).__name__}") from None
        p = payload["person"]
        p["brdy"] = date.fromisoformat(p["brdy"]) if p["brdy"] else None
        return Person(**p), Credential(**payload["cred"])

    def open_visit(self, person: Person, cred: Credential, items: tuple[RxItem, ...],
                   verdicts, diagnosis: str, overrides: dict[str, str]) -> str:
        """Record the visit locally, then register it (2201) and upload the diagnosis (2203)."""
        visit_id = str(uuid.uuid4())
        now = self.clock()
        row = dict(id=visit_id, created_at=now.isoformat(), business_date=now.date().isoformat(),
                   state=vs.NEW, opter=self.operator.opter, cert_type=cred.mdtrt_cert_type,
                   person_sealed=self.seal_party(visit_id, person, cred),
                   psn_ref=self.cipher.keyed_hash(person.psn_no),
                   certno_ref=self.cipher.keyed_hash(person.certno) if person.certno else None,
                   insutype=person.insutype, diagnosis=diagnosis,
                   items_json=json.dumps([_flat(i) for i in items], ensure_ascii=False),
                   verdicts_json=json.dumps([_flat(v) for v in verdicts], ensure_ascii=False),
                   self_pay=False)
        with raw_tx(self.engine) as cur:
            cur.execute(f"INSERT INTO visit ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                        tuple(row.values()))
        self._remember(visit_id, items=items, mdtrt_id=None)
        self.audit.remember_visit(visit_id, row)  # its context, without reading it back
        warned = {v.rule_id for v in verdicts if v.outcome == "warn"}
        for rule_id, reason in overrides.items():
            if rule_id in warned:  # only an override that actually overrode something is one
                self.audit.append("formulary_override", visit_id, "ok", rule_id=rule_id,
                                  reason=redact(reason, person.psn_name, person.certno,
                                                person.psn_no))
        self.audit.append("prescription", visit_id, "ok", items=[i.code for i in items],
                          verdicts=[f"{v.rule_id}:{v.outcome}" for v in verdicts])
        try:
            ipt_otp_no = self._ipt_otp_no(visit_id)
            _, ans = self.call("2201", visit_id, messages.registration(
                person, cred, now, ipt_otp_no, self.operator.opter, self.operator.opter_name,
                self.settings.dept_code, self.settings.dept_name), person)
            mdtrt_id = messages.parse_registration(ans.output)
            with raw_tx(self.engine) as cur:  # known at once, so a failure below can withdraw it
                cur.execute("UPDATE visit SET mdtrt_id = ? WHERE id = ?", (mdtrt_id, visit_id))
            self._remember(visit_id, mdtrt_id=mdtrt_id)
            self.call("2203", visit_id, messages.visit_info(
                mdtrt_id, person, now, diagnosis, DiagnosisList.load_default().name_of(diagnosis),
                self.operator.opter, self.operator.opter_name, self.settings.dept_name), person)
        except Exception as exc:
            self._fail(visit_id, exc)
            raise
        self._advance(visit_id, vs.REGISTERED, mdtrt_id=mdtrt_id)
        self.audit.append("visit_register", visit_id, "ok", mdtrt_id=mdtrt_id)
        return visit_id

    @staticmethod
    def _ipt_otp_no(visit_id: str) -> str:
        return visit_id.replace("-", "")[:20]

    def cancel_visit(self, visit_id: str, reason: str = "") -> None:
        """Withdraw a visit that has not been settled: 2202 at the insurer (which also drops its
        unsettled fee lines), then `cancelled` here. Nothing has moved, so nothing is owed."""
        v = self.visit_row(visit_id)
        if v.state not in (vs.NEW, vs.REGISTERED, vs.FEES_UPLOADED, vs.PRESETTLED):
            raise NotAllowed(f"这笔就诊状态为“{vs.LABELS.get(v.state, v.state)}”，不能取消",
                             f"cancel in state {v.state}")
        if v.mdtrt_id:
            person, _ = self.open_party(visit_id)
            self.call("2202", visit_id, messages.cancel_registration(
                v.mdtrt_id, person.psn_no, self._ipt_otp_no(visit_id)), person)
        self._advance(visit_id, vs.CANCELLED, message=(reason or "已取消")[:500])
        self.audit.append("visit_cancel", visit_id, "ok", reason=reason[:200])

    def record_block(self, stopping, person: Person | None = None,
                     items: tuple[RxItem, ...] = ()) -> None:
        """A prescription the formulary stopped: audited even though no visit was opened."""
        self.audit.append("formulary_block", "", "blocked", rules=[v.rule_id for v in stopping],
                          psn_ref=self.cipher.keyed_hash(person.psn_no) if person else "",
                          rx=[{"code": i.code, "qty": i.qty, "days": i.days} for i in items])

    def _fail(self, visit_id: str, exc: Exception) -> None:
        """A step before settlement failed: the visit is dead, no money moved. Withdraw its
        registration if the insurer has one, so both sides agree; else mark it failed."""
        msg = getattr(exc, "message", str(exc))
        if self.visit_row(visit_id).mdtrt_id:
            try:
                self.cancel_visit(visit_id, f"未完成（{msg[:100]}），已撤销挂号")
                return
            except (NetworkProblem, RefusedByInsurer) as cancel_exc:
                log.warning("could not withdraw visit %s: %s", visit_id, cancel_exc.detail)
        self._advance(visit_id, vs.FAILED, message=msg[:500])
        self.audit.append("visit_failed", visit_id, "error", reason=type(exc).__name__)

    def visit_row(self, visit_id: str) -> Visit:
        with self.engine.connect() as conn:
            return conn.execute(select(Visit.__table__).where(Visit.id == visit_id)).one()

    def _remember(self, visit_id: str, **facts) -> None:
        if self._written is None or len(self._written) > 256:  # a day at one counter
            self._written = {}
        self._written.setdefault(visit_id, {}).update(facts)

    def _items_and_mdtrt_id(self, visit_id: str) -> tuple[tuple[RxItem, ...], str | None]:
        """The visit's items and mdtrt_id: as this process wrote them, else from the row."""
        facts = (self._written or {}).get(visit_id)
        if facts is not None and "items" in facts and facts.get("mdtrt_id") is not None:
            return facts["items"], facts["mdtrt_id"]
        v = self.visit_row(visit_id)
        return tuple(RxItem(**i) for i in json.loads(v.items_json)), v.mdtrt_id

    def upload_fees(self, visit_id: str) -> None:
        items, mdtrt_id = self._items_and_mdtrt_id(visit_id)
        person, _ = self.open_party(visit_id)
        lines = [FeeLine(f"{n + 1:03d}", it.code, it.qty, it.price_fen, it.days)
                 for n, it in enumerate(items)]
        try:
            self.call("2204", visit_id, messages.fee_upload(
                mdtrt_id, person, self._chrg_bchno(visit_id), lines, self.clock(),
                self.operator.opter, self.operator.opter_name), person)
        except Exception as exc:
            self._fail(visit_id, exc)
            raise
        self._advance(visit_id, vs.FEES_UPLOADED)
        self.audit.append("fees_upload", visit_id, "ok", lines=len(lines))

    @staticmethod
    def _chrg_bchno(visit_id: str) -> str:
        return visit_id.replace("-", "")[:16]

    def _presettle_input(self, visit_id: str) -> tuple[Person, dict[str, Any]]:
        items, mdtrt_id = self._items_and_mdtrt_id(visit_id)
        person, cred = self.open_party(visit_id)
        total = sum(it.amount_fen for it in items)
        return person, messages.presettle(person, cred, mdtrt_id, self._chrg_bchno(visit_id), total)

    def presettle(self, visit_id: str) -> SetlInfo:
        person, input_ = self._presettle_input(visit_id)
        try:
            _, ans = self.call("2206", visit_id, input_, person)
            pre = messages.parse_setlinfo(ans.output, expect_setl_id=False)
        except Exception as exc:
            self._fail(visit_id, exc)
            raise
        self._advance(visit_id, vs.PRESETTLED, presettle_json=json.dumps(_flat(pre.split)))
        self.audit.append("presettle", visit_id, "ok", medfee=pre.split.medfee_sumamt,
                          fund=pre.split.fund_pay_sumamt, acct=pre.split.acct_pay,
                          cash=pre.split.psn_cash_pay)
        return pre

    def settle(self, visit_id: str, pre: SetlInfo) -> Settlement:
        """2207. The visit is `settling` (committed) before the msgid is sent; a lost answer is `unknown`."""
        person, input_ = self._presettle_input(visit_id)
        self._advance(visit_id, vs.SETTLING)
        body_input = messages.settle(input_, pre, self._chrg_bchno(visit_id))
        try:
            msgid, ans = self.call("2207", visit_id, body_input, person)
            info = messages.parse_setlinfo(ans.output, expect_setl_id=True)
        except OutcomeUnknownProblem as exc:
            self._settle_unknown(visit_id, exc.message, exc.detail)
            raise
        except messages.MessageError as exc:
            # An answer we cannot trust is not a settlement we can print: ask again later.
            self._settle_unknown(visit_id, UNTRUSTED_ANSWER, str(exc))
            raise OutcomeUnknownProblem(UNTRUSTED_ANSWER, str(exc)) from exc
        except (NetworkProblem, RefusedByInsurer) as exc:
            # Refused, or the connection failed before a byte went out: nothing moved.
            self._advance(visit_id, vs.FAILED, message=exc.message[:500])
            self.audit.append("settle", visit_id, exc.status, reason=exc.detail[:200])
            raise
        return self.complete_settlement(visit_id, msgid, info)

    def _settle_unknown(self, visit_id: str, message: str, detail: str) -> None:
        self._advance(visit_id, vs.UNKNOWN, message=message[:500])
        self.audit.append("settle", visit_id, "unknown", reason=detail[:200])

    def complete_settlement(self, visit_id: str, msgid: str, info: SetlInfo) -> Settlement:
        """The insurer confirmed: record it durably first, then print (also used by recovery)."""
        self._advance(visit_id, vs.SETTLED, setl_msgid=msgid, setl_id=info.setl_id,
                      setl_time=info.setl_time, split_json=json.dumps(_flat(info.split)))
        crash_point("after_settled", "2207")
        self.audit.append("settle", visit_id, "ok", setl_id=info.setl_id, msgid=msgid,
                          medfee=info.split.medfee_sumamt, fund=info.split.fund_pay_sumamt,
                          acct=info.split.acct_pay, cash=info.split.psn_cash_pay)
        settlement = Settlement(visit_id, msgid, info.setl_id, info.mdtrt_id, info.setl_time,
                                info.split, training=self.settings.training)
        person, _ = self.open_party(visit_id)
        return self._with_receipt(settlement, person)

    def reprint_receipt(self, visit_id: str) -> str:
        """Write the receipt of a settled visit again, marked 补打, from what the books hold."""
        v = self.visit_row(visit_id)
        if v.state != vs.SETTLED or not v.split_json:
            raise NotAllowed(f"这笔就诊状态为“{vs.LABELS.get(v.state, v.state)}”，没有可补打的医保收据",
                             f"reprint in state {v.state}")
        person, _ = self.open_party(visit_id)
        settlement = Settlement(visit_id, v.setl_msgid or "", v.setl_id, v.mdtrt_id or "",
                                v.setl_time or "", Split(**json.loads(v.split_json)),
                                training=self.settings.training)
        return self._with_receipt(settlement, person, reprint=True).receipt_path

    def revocation_receipt(self, visit_id: str, msgid: str, info: SetlInfo) -> str:
        """The slip the patient gets back when a settlement is revoked (2208)."""
        v = self.visit_row(visit_id)
        person, _ = self.open_party(visit_id)
        items = tuple(RxItem(**i) for i in json.loads(v.items_json))
        slip = Settlement(visit_id, msgid, info.setl_id, info.mdtrt_id, info.setl_time, info.split,
                          training=self.settings.training)
        header = ReceiptHeader(self.settings.fixmedins_name, self.settings.fixmedins_code,
                               self.operator.opter, self.operator.opter_name,
                               self.settings.training)
        path = write_pdf(self.settings.receipts_dir / f"{info.setl_time[:10]}_{info.setl_id}_revoke.pdf",
                         receipt_lines(header, person, items, slip, revokes=v.setl_id),
                         training=self.settings.training)
        self.audit.append("receipt_print", visit_id, "ok", setl_id=info.setl_id, kind="revoke")
        return str(path)

    def _with_receipt(self, settlement: Settlement, person: Person, *,
                      reprint: bool = False) -> Settlement:
        v = self.visit_row(settlement.visit_id)
        items = tuple(RxItem(**i) for i in json.loads(v.items_json))
        header = ReceiptHeader(self.settings.fixmedins_name, self.settings.fixmedins_code,
                               self.operator.opter, self.operator.opter_name,
                               self.settings.training)
        name = f"{settlement.setl_time[:10]}_{settlement.setl_id}{'_reprint' if reprint else ''}.pdf"
        path = write_pdf(self.settings.receipts_dir / name.replace(" ", "_"),
                         receipt_lines(header, person, items, settlement, reprint=reprint),
                         training=self.settings.training)
        with self.engine.begin() as conn:
            conn.execute(Visit.__table__.update().where(Visit.id == settlement.visit_id)
                         .values(receipt_path=str(path)))
        self.audit.append("receipt_reprint" if reprint else "receipt_print", settlement.visit_id,
                          "ok", setl_id=settlement.setl_id)
        return replace(settlement, receipt_path=str(path))

    def unresolved_visits(self, psn_ref: str | None = None) -> list[str]:
        """Visits whose money outcome is not known yet; the counter shows them until resolved."""
        # The states as literals: SQLite then reads the partial index that holds just these.
        sql = f"SELECT id FROM visit WHERE {vs.UNRESOLVED_SQL}"
        args: tuple = ()
        if psn_ref is not None:
            sql, args = sql + " AND psn_ref = ?", (psn_ref,)
        with raw_read(self.engine) as cur:
            return [r[0] for r in cur.execute(sql, args)]

    # ---- the whole visit ---------------------------------------------------------------

    def run_visit(self, cred: Credential, spec: list[tuple[str, int, int | None]], *,
                  diagnosis: str = "I10", overrides: dict[str, str] | None = None,
                  emergency: bool = False,
                  confirm: Callable[[SetlInfo], bool] = lambda pre: True) -> VisitResult:
        """Person -> prescription -> verdicts -> register -> fees -> pre-settle -> settle -> receipt.

        Errors are raised as CounterError subclasses; `confirm` lets a screen show the
        pre-settlement split before any money moves.
        """
        # One DBAPI connection for the visit's journal, state and audit transactions (each still
        # commits on its own, exactly where it did): no pool checkout per transaction.
        with pinned(self.engine):
            overrides = overrides or {}
            person = self.lookup(cred)
            if self.unresolved_visits(self.cipher.keyed_hash(person.psn_no)):
                raise OutcomeUnknownProblem(
                    "该患者有一笔结算结果未知，核实清楚前不能再次结算，以免重复扣费。请先处理“待核实”的结算。",
                    "person has an unresolved settlement")
            items = self.resolve_items(spec)
            verdicts = self.check(items, (diagnosis,), emergency, person)
            stopping = self.unresolved_verdicts(verdicts, overrides)
            if stopping:
                self.record_block(stopping, person, items)
                return VisitResult("blocked", person, items, tuple(verdicts),
                                   message="；".join(v.message for v in stopping))
            visit_id = self.open_visit(person, cred, items, verdicts, diagnosis, overrides)
            self.upload_fees(visit_id)
            pre = self.presettle(visit_id)
            if not confirm(pre):
                self.cancel_visit(visit_id, "操作员取消结算")
                return VisitResult("cancelled", person, items, tuple(verdicts), pre.split,
                                   message="已取消，未结算")
            settlement = self.settle(visit_id, pre)
            return VisitResult("settled", person, items, tuple(verdicts), pre.split, settlement,
                               message="结算成功")
