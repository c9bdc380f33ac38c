"""A visit's sealed patient record opens only in its own row, unaltered, under this
installation's data key; anything else is a clear refusal, never someone else's patient."""
from __future__ import annotations

import sqlite3
from datetime import date

import pytest
from auth_helpers import admin_session

from clinic import visit_state as vs
from clinic.config import load_settings
from clinic.counter import Counter
from clinic.errors import CounterError
from settlement.values import Credential, Person

PEOPLE = [Person("31011600000000000001", "王秀英", "310116194301011234", "2", date(1943, 1, 1), 83,
                 "390", "11", "1", 0, "310116"),
          Person("31011600000000000002", "李建国", "310116195505054321", "1", date(1955, 5, 5), 71,
                 "310", "11", "1", 0, "310116")]


@pytest.fixture
def visits(tmp_path):
    settings = load_settings(home=tmp_path / "clinic")
    counter = Counter(settings, admin_session(settings))
    ids = []
    with counter.engine.begin() as conn:
        for n, p in enumerate(PEOPLE):
            vid = f"visit-{n}"
            conn.exec_driver_sql(
                "INSERT INTO visit (id, created_at, business_date, state, opter, cert_type, "
                "person_sealed, items_json, verdicts_json) VALUES (?, ?, ?, ?, ?, ?, ?, '[]', '[]')",
                (vid, "2026-11-30T09:00:00", "2026-11-30", vs.NEW, "admin", "02",
                 counter.seal_party(vid, p, Credential("02", p.certno, certno=p.certno))))
            ids.append(vid)
    counter.close()
    yield settings, ids


def _fresh(settings):  # a new process: nothing remembered, everything unsealed from the file
    return Counter(settings, admin_session(settings))


def test_each_visit_opens_to_its_own_patient(visits):
    settings, ids = visits
    counter = _fresh(settings)
    assert [counter.open_party(v)[0].psn_name for v in ids] == ["王秀英", "李建国"]
    counter.close()


def test_a_ciphertext_moved_to_another_row_is_refused(visits):
    settings, ids = visits
    con = sqlite3.connect(settings.db_path)
    con.execute("UPDATE visit SET person_sealed = (SELECT person_sealed FROM visit WHERE id = ?) "
                "WHERE id = ?", (ids[0], ids[1]))
    con.commit()
    counter = _fresh(settings)
    with pytest.raises(CounterError, match="打不开"):
        counter.open_party(ids[1])        # never 王秀英 under 李建国's visit
    assert counter.open_party(ids[0])[0].psn_name == "王秀英"
    counter.close()


def test_a_flipped_ciphertext_bit_is_refused(visits):
    settings, ids = visits
    con = sqlite3.connect(settings.db_path)
    blob = bytearray(con.execute("SELECT person_sealed FROM visit WHERE id = ?", (ids[0],)).fetchone()[0])
    blob[20] ^= 0x01
    con.execute("UPDATE visit SET person_sealed = ? WHERE id = ?", (bytes(blob), ids[0]))
    con.commit()
    counter = _fresh(settings)
    with pytest.raises(CounterError, match="打不开"):
        counter.open_party(ids[0])
    counter.close()


def test_another_installations_data_key_opens_nothing(visits, tmp_path):
    settings, ids = visits
    other = admin_session(load_settings(home=tmp_path / "elsewhere"))  # its own, new data key
    counter = Counter(settings, other)
    with pytest.raises(CounterError, match="打不开"):
        counter.open_party(ids[0])
    counter.close()
