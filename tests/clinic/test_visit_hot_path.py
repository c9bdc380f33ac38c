"""The visit path's shortcuts (raw statements, per-process memos) keep the behaviour they replace."""
from __future__ import annotations

import json
import random
from datetime import date, datetime, timedelta
from importlib import resources
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clinic import visit_state as vs
from clinic.config import load_settings
from clinic.counter import Counter
from clinic.errors import BlockedByFormulary
from formulary.signing import demo_private_key, sign
from formulary.store import FormularyStore
from settlement import wire
from auth_helpers import admin_session

NIFEDIPINE = "XC08CAX066A011010100002"


@given(st.text())
def test_wire_strings_are_encoded_exactly_as_json_dumps_would(s):
    assert wire.dumps({s: [s]}) == (
        "{" + json.dumps(s, ensure_ascii=False) + ":[" + json.dumps(s, ensure_ascii=False) + "]}"
    ).encode("utf-8")


@pytest.fixture
def counter(tmp_path):
    clock = {"now": datetime(2026, 11, 30, 9, 0)}
    settings = load_settings(home=tmp_path / "clinic")
    c = Counter(settings, admin_session(settings), clock=lambda: clock["now"])
    c.test_clock = clock
    yield c
    c.close()


def _insert_visit(counter, visit_id, state, *, psn_no="P1", day="2026-11-20",
                  items=({"code": NIFEDIPINE, "name": "硝苯地平", "qty": 1, "days": 7,
                          "price_fen": 1000, "unit": "盒"},)):
    row = dict(id=visit_id, created_at=f"{day}T09:00:00", business_date=day, state=state,
               opter="D0001", cert_type="02", person_sealed=b"", insutype="390",
               psn_ref=counter.cipher.keyed_hash(psn_no), diagnosis="I10",
               items_json=json.dumps(list(items), ensure_ascii=False), verdicts_json="[]",
               self_pay=False)
    with counter.engine.begin() as conn:
        conn.exec_driver_sql(f"INSERT INTO visit ({', '.join(row)}) "
                             f"VALUES ({', '.join('?' * len(row))})", tuple(row.values()))
    return row


def _item(code, days):
    return {"code": code, "name": "药", "qty": 1, "days": days, "price_fen": 1000, "unit": "盒"}


def _transitions(counter, visit_id):
    with counter.engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(
            "SELECT from_state, to_state FROM visit_transition WHERE visit_id = ? ORDER BY id",
            (visit_id,))]


def _state(counter, visit_id):
    with counter.engine.connect() as conn:
        return conn.exec_driver_sql("SELECT state FROM visit WHERE id = ?",
                                    (visit_id,)).scalar_one()


def test_a_transition_notices_another_writer_moved_the_visit(counter):
    _insert_visit(counter, "v1", vs.PRESETTLED)
    counter._states["v1"] = vs.REGISTERED  # what this process last wrote; someone moved it on
    counter._advance("v1", vs.SETTLING)
    assert _state(counter, "v1") == vs.SETTLING
    assert _transitions(counter, "v1") == [(vs.PRESETTLED, vs.SETTLING)]


def test_an_illegal_transition_changes_nothing(counter):
    _insert_visit(counter, "v1", vs.SETTLED)
    with pytest.raises(vs.IllegalTransition):
        counter._advance("v1", vs.FAILED)
    assert _state(counter, "v1") == vs.SETTLED and _transitions(counter, "v1") == []
    with pytest.raises(ValueError):
        counter._advance("v1", vs.REVOKING, **{"state = 'x', message": "injected"})


def test_transition_still_takes_a_sqlalchemy_connection(counter):
    _insert_visit(counter, "v1", vs.SETTLED)
    with counter.engine.begin() as conn:
        counter.transition(conn, "v1", vs.REVOKING, revoked_by="admin")
    assert _state(counter, "v1") == vs.REVOKING
    assert _transitions(counter, "v1") == [(vs.SETTLED, vs.REVOKING)]


def test_history_holds_settled_visits_of_that_patient_only(counter):
    _insert_visit(counter, "a", vs.SETTLED, day="2026-11-20")
    _insert_visit(counter, "b", vs.FAILED, day="2026-11-25")
    _insert_visit(counter, "c", vs.SETTLED, psn_no="P2", day="2026-11-26")
    hist = counter.history(SimpleNamespace(psn_no="P1"))
    assert [(h.code, h.dispensed_on, h.days) for h in hist] == [(NIFEDIPINE, date(2026, 11, 20), 7)]


def test_history_keeps_the_longest_lasting_supply_per_drug_up_to_today(counter):
    _insert_visit(counter, "old_long", vs.SETTLED, day="2026-10-01", items=(_item(NIFEDIPINE, 90),))
    _insert_visit(counter, "new_short", vs.SETTLED, day="2026-11-25", items=(_item(NIFEDIPINE, 7),))
    _insert_visit(counter, "future", vs.SETTLED, day="2026-12-05", items=(_item(NIFEDIPINE, 30),))
    hist = counter.history(SimpleNamespace(psn_no="P1"), date(2026, 11, 30))
    # 10-01 + 90 days = 12-30 outlasts 11-25 + 7 days; a visit dated after today is not history
    assert [(h.code, h.dispensed_on, h.days) for h in hist] == [(NIFEDIPINE, date(2026, 10, 1), 90)]


def test_the_repeat_rule_gives_the_same_verdicts_on_the_kept_history_as_on_every_visit(counter):
    from formulary import rules
    from formulary.drugs import ingredient_key
    rng = random.Random(4)
    groups = {}
    for d in counter.formulary.drugs:
        groups.setdefault(ingredient_key(d.code), []).append(d.code)
    # drugs sharing an ingredient, so the rule compares across codes too
    codes = [c for g in groups.values() if len(g) > 1 for c in g][:6]
    assert len({ingredient_key(c) for c in codes}) < len(codes) == 6
    every = []
    for n in range(60):
        day = date(2026, 11, 30) - timedelta(days=rng.randrange(0, 120))
        items = tuple(_item(rng.choice(codes), rng.randrange(1, 60)) for _ in range(rng.randrange(1, 4)))
        _insert_visit(counter, f"v{n}", vs.SETTLED, day=day.isoformat(), items=items)
        every += [rules.PriorSupply(i["code"], day, i["days"]) for i in items]
    lines = [rules.RxLine(code, 1, 7) for code in codes]
    today = date(2026, 11, 30)
    kept = counter.history(SimpleNamespace(psn_no="P1"), today)
    assert len(kept) <= len(codes) < len(every)
    assert (rules.check(lines, counter.formulary, history=kept, today=today)
            == rules.check(lines, counter.formulary, history=every, today=today))


def test_unresolved_visits_are_those_whose_money_outcome_is_open(counter):
    for n, state in enumerate([vs.SETTLING, vs.UNKNOWN, vs.REVOKING, vs.REVERSING, vs.SETTLED,
                               vs.FAILED, vs.PRESETTLED]):
        _insert_visit(counter, f"v{n}", state, psn_no="P1" if n % 2 else "P2")
    assert sorted(counter.unresolved_visits()) == ["v0", "v1", "v2", "v3"]
    assert sorted(counter.unresolved_visits(counter.cipher.keyed_hash("P1"))) == ["v1", "v3"]


def test_an_audit_context_from_the_remembered_row_equals_the_one_read_back(counter):
    row = _insert_visit(counter, "v1", vs.NEW)
    counter.audit.remember_visit("v1", row)
    remembered = counter.audit._read_visit_context("settle", "v1")
    counter.audit._rows.clear()
    read_back = counter.audit._read_visit_context("settle", "v1")
    assert remembered == read_back and read_back["rx"][0]["code"] == NIFEDIPINE
    assert read_back["psn_ref"] == counter.cipher.keyed_hash("P1")


def test_the_term_memo_follows_the_formulary_version_in_force(counter, tmp_path):
    assert counter.resolve_items([(NIFEDIPINE, 1, None)])[0].code == NIFEDIPINE
    csv = resources.files("formulary").joinpath("data/formulary_v2.csv").read_text(encoding="utf-8")
    without = "".join(ln for ln in csv.splitlines(keepends=True) if NIFEDIPINE not in ln)
    path = tmp_path / "v3.formulary.json"
    path.write_bytes(sign(without, version=3, effective_date=date(2026, 12, 1),
                          key=demo_private_key(), issuer="枫泾镇社区卫生服务中心"))
    FormularyStore.open(counter.settings.home / "formulary").install(path, today=date(2026, 11, 30))
    counter.test_clock["now"] += timedelta(days=1)  # v3 is in force: the drug is gone
    with pytest.raises(BlockedByFormulary):
        counter.resolve_items([(NIFEDIPINE, 1, None)])


def test_a_pinned_connection_serves_the_visits_transactions_each_committed_on_its_own(tmp_path):
    from sqlalchemy import event

    from clinic.db import open_database, pinned, raw_read, raw_tx
    from settlement.journal import Journal, PlainSealer

    engine = open_database(tmp_path / "c.db")
    checkouts = []
    event.listen(engine.pool, "checkout", lambda *a: checkouts.append(1))
    journal = Journal(engine, "H31011600001", PlainSealer())
    with pinned(engine):
        journal.record_intent("9001", None, lambda m, now: b"{}")
        with raw_tx(engine) as cur:
            cur.execute("INSERT INTO journal_msgid_clock (id, last_stamp, last_serial) "
                        "VALUES (2, 'x', 1)")
        with pytest.raises(ZeroDivisionError), raw_tx(engine) as cur:
            cur.execute("UPDATE journal_msgid_clock SET last_serial = 99 WHERE id = 2")
            1 / 0  # rolled back, and the pinned connection goes on working
        with raw_read(engine) as cur:
            assert cur.execute("SELECT last_serial FROM journal_msgid_clock WHERE id = 2"
                               ).fetchone() == (1,)
        # another connection sees every committed transaction at once
        with engine.connect() as other:
            assert other.exec_driver_sql("SELECT count(*) FROM journal_message").scalar() == 1
    assert len(checkouts) == 2  # the pinned one, and `other`
    engine.dispose()
