"""The logged-in user is who acts: their id and name are in every insurer message and every
audit event of what they did."""
from __future__ import annotations

import json
import sqlite3

from auth_helpers import TEST_PASSWORD, admin_session, make_user
from e2e_helpers import clinic

from clinic.config import load_settings
from clinic.counter import Counter
from settlement import wire


def test_every_message_and_event_names_the_logged_in_operator(services, tmp_path):
    network, reader, _ = services
    home = tmp_path / "clinic"
    clinic(home, "visit", "list")                      # the home and its administrator
    settings = load_settings(home=home)
    make_user(settings, "w7", "worker")                # 测试worker, with their own password
    proc = clinic(home, "settle", "--reader", reader, "--rx", "xbdp:1:7", "--network", network,
                  "--json", env={"CLINIC_USER": "w7", "CLINIC_PASSWORD": TEST_PASSWORD})
    assert proc.returncode == 0, proc.stderr

    con = sqlite3.connect(home / "clinic.db")
    msgids = [r[0] for r in con.execute("SELECT msgid FROM journal_message")]
    counter = Counter(settings, admin_session(settings))
    try:
        bodies = [wire.loads(counter.journal.entry(m)["body"]) for m in msgids]
    finally:
        counter.close()
    assert len(bodies) >= 6
    assert {(b["opter"], b["opter_name"]) for b in bodies} == {("w7", "测试worker")}

    events = con.execute("SELECT operator, role, action, details FROM audit_event "
                         "WHERE action IN ('card_read', 'prescription', 'settle', 'receipt_print')"
                         ).fetchall()
    assert len(events) == 4
    for operator, role, _, details in events:
        assert (operator, role) == ("w7", "worker")
        assert json.loads(details)["operator_name"] == "测试worker"
