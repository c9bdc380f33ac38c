from datetime import datetime

import pytest
from net_helpers import closed_port
from sqlalchemy import select

from clinic.db import open_database
from settlement.client import InsurerClient
from settlement.errors import NetworkUnreachable
from settlement.journal import Journal, PlainSealer, messages


def test_msgids_are_unique_and_never_go_back_when_the_clock_does(tmp_path):
    engine = open_database(tmp_path / "c.db")
    times = iter([datetime(2026, 11, 30, 10, 0, 0), datetime(2026, 11, 30, 10, 0, 0),
                  datetime(2026, 11, 30, 9, 0, 0),  # clock set back an hour
                  datetime(2026, 11, 30, 10, 0, 1)])
    j = Journal(engine, "H31011600001", PlainSealer(), clock=lambda: next(times))
    ids = [j.record_intent("9001", None, lambda m, now: b"{}")[0] for _ in range(4)]
    assert len(set(ids)) == 4
    assert ids == sorted(ids)
    assert ids[2] == "H31011600001202611301000000003"


def test_serial_overflow_moves_to_the_next_second(tmp_path):
    engine = open_database(tmp_path / "c.db")
    j = Journal(engine, "H31011600001", PlainSealer(), clock=lambda: datetime(2026, 11, 30, 10, 0, 0))
    with engine.begin() as conn:
        from settlement.journal import msgid_clock
        conn.execute(msgid_clock.insert().values(id=1, last_stamp="20261130100000", last_serial=9999))
    msgid, _ = j.record_intent("9001", None, lambda m, now: b"{}")
    assert msgid == "H31011600001202611301000010001"


def test_message_is_journaled_before_the_send_even_when_the_send_fails(tmp_path):
    engine = open_database(tmp_path / "c.db")
    j = Journal(engine, "H31011600001", PlainSealer())
    client = InsurerClient(f"http://127.0.0.1:{closed_port()}", timeout=2)
    with pytest.raises(NetworkUnreachable):
        j.call(client, "9001", None, lambda msgid, now: msgid.encode())
    with engine.connect() as conn:
        rows = conn.execute(select(messages)).all()
    assert len(rows) == 1
    assert rows[0].state == "unreachable" and rows[0].body == rows[0].msgid.encode()
    assert rows[0].attempts == 1


def test_two_writers_on_one_database_never_share_a_msgid(tmp_path):
    """Each journal remembers the clock row it wrote; another writer in between is noticed."""
    engine = open_database(tmp_path / "c.db")
    now = lambda: datetime(2026, 11, 30, 10, 0, 0)  # the same second throughout
    a = Journal(engine, "H31011600001", PlainSealer(), clock=now)
    b = Journal(engine, "H31011600001", PlainSealer(), clock=now)
    ids = []
    for j in (a, b, a, a, b, a, b, b):
        ids.append(j.record_intent("9001", None, lambda m, t: b"{}")[0])
    assert len(set(ids)) == len(ids) and ids == sorted(ids)
    assert ids[-1].endswith("0008")


def test_marks_write_only_state_columns_and_count_their_commits(tmp_path):
    engine = open_database(tmp_path / "c.db")
    j = Journal(engine, "H31011600001", PlainSealer())
    msgid, _ = j.record_intent("9001", None, lambda m, now: b"{}")
    assert j.commits == 1
    for _ in range(2):  # refused every time, not only before its UPDATE is remembered
        with pytest.raises(ValueError, match="not a journal state column"):
            j._mark(msgid, state="answered", attempts=0)
    j._mark(msgid, state="refused", err_msg="no", answered_at="t1")
    j._mark(msgid, answered_at="t2", state="answered", answer=b"A")  # other columns, other order
    assert j.commits == 3
    with engine.connect() as conn:
        row = conn.execute(select(messages)).one()
    assert (row.state, row.err_msg, row.answered_at, row.answer, row.attempts) == \
        ("answered", "no", "t2", b"A", 0)
