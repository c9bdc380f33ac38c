"""Sign-in (9001) lasts one business day: a counter left running past midnight signs in again."""
from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import datetime

from auth_helpers import admin_session

from clinic.config import load_settings
from clinic.counter import Counter
from settlement.mock_network import registry
from settlement.values import Credential


def test_a_counter_running_past_midnight_signs_in_again_before_its_next_call(services, tmp_path):
    network, _, _ = services
    clock = {"now": datetime(2026, 11, 30, 23, 59, 0)}
    settings = load_settings(home=tmp_path / "clinic")
    counter = Counter(replace(settings, network_url=network), admin_session(settings),
                      clock=lambda: clock["now"])
    certno = registry.default_villager().certno
    cred = Credential("02", certno, certno=certno)
    try:
        counter.lookup(cred)
        clock["now"] = datetime(2026, 12, 1, 8, 0, 0)
        counter.lookup(cred)
    finally:
        counter.close()
    con = sqlite3.connect(tmp_path / "clinic" / "clinic.db")
    days = [r[0] for r in con.execute("SELECT business_date FROM sign_in ORDER BY id")]
    assert days == ["2026-11-30", "2026-12-01"]
    infnos = [r[0] for r in con.execute("SELECT infno FROM journal_message ORDER BY msgid")]
    assert infnos == ["9001", "1101", "9001", "1101"]
