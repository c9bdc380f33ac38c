"""End to end, as real processes: a clinic day (settle, revoke, close) against the insurer
simulator and a virtual card reader, every user action audited exactly once with every field
filled; the day-close report carries the signed checkpoint; the export reaches the supervisor."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections import Counter as Tally

import pytest

from clinic.services import start_reader, start_simulator

pytestmark = pytest.mark.usefixtures("cli_admin")  # `clinic` processes log in

ONCE_PER_VISIT = ("card_read", "person_lookup", "prescription", "visit_register", "fees_upload",
                  "presettle", "settle", "receipt_print")
VISIT_ACTIONS = ("prescription", "visit_register", "fees_upload", "presettle", "settle",
                 "receipt_print", "revoke")


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    work = tmp_path_factory.mktemp("services")
    sim = start_simulator(work / "insurer.db")
    reader = start_reader()
    yield sim.address, reader.address
    reader.stop()
    sim.stop()


def run(home, *args, network="", user=""):
    from auth_helpers import ensure_admin
    ensure_admin(home)
    env = {**os.environ, "CLINIC_HOME": str(home), "CLINIC_TRAINING_HOME": f"{home}-training",
           **({"CLINIC_NETWORK": network} if network else {}),
           **({"CLINIC_USER": user} if user else {})}
    return subprocess.run([sys.executable, "-m", "clinic", *args], capture_output=True, text=True,
                          env=env, timeout=120, check=False)


def test_a_clinic_day_is_audited_once_per_action_and_reaches_the_supervisor(services, tmp_path):
    network, reader = services
    home = tmp_path / "clinic"
    settle = run(home, "settle", "--reader", reader, "--rx", "xbdp:1:7", "--network", network,
                 "--json")
    assert settle.returncode == 0, settle.stderr
    con = sqlite3.connect(home / "clinic.db")
    con.row_factory = sqlite3.Row
    rows = [dict(r) for r in con.execute("SELECT * FROM audit_event ORDER BY seq")]
    tally = Tally(r["action"] for r in rows)
    for action in (*ONCE_PER_VISIT, "sign_in", "app_start", "app_stop"):
        assert tally[action] == 1, (action, tally)
    for r in rows:
        assert all(r[f] for f in ("ts", "clinic", "terminal", "operator", "role", "action",
                                  "outcome", "details", "hash", "prev_hash")), r
        if r["action"] in VISIT_ACTIONS:
            d = json.loads(r["details"])
            assert r["object"] and d["psn_ref"] and d["business_date"], r
    setl = json.loads(next(r["details"] for r in rows if r["action"] == "settle"))
    assert {"setl_id", "msgid", "fund", "medfee", "cash", "rx", "psn_ref", "cert_type"} <= set(setl)
    out = json.loads(settle.stdout)
    for secret in (out["psn_name"],):
        assert secret not in json.dumps(rows, ensure_ascii=False)

    visit_id = con.execute("SELECT id FROM visit").fetchone()[0]
    rv = run(home, "visit", "revoke", visit_id, "--reason", "开错药", network=network)
    assert rv.returncode == 0, rv.stderr
    close = run(home, "day", "close", "--json", network=network)
    report = json.loads(close.stdout)
    cp = report["audit_checkpoint"]
    assert cp and cp["reason"] == "day_close" and len(cp["signature"]) == 128
    tally = Tally(r[0] for r in con.execute("SELECT action FROM audit_event"))
    for action in ("revoke", "day_close_start", "day_close", "sign_out"):
        assert tally[action] == 1, (action, tally)
    assert tally["app_start"] == tally["app_stop"] == 3
    assert run(home, "audit", "verify").returncode == 0      # every process ended with a checkpoint

    bundle = tmp_path / "export.zip"
    assert run(home, "audit", "export", "--out", str(bundle)).returncode == 0
    (tmp_path / "day.json").write_text(close.stdout)
    db = f"sqlite:///{tmp_path / 'town.db'}"
    from auth_helpers import make_user

    from clinic.config import load_settings
    make_user(load_settings(home=home), "super", "supervisor")  # the town's supervisor imports
    imp = run(home, "supervisor", "import", str(bundle), str(tmp_path / "day.json"), "--db", db,
              user="super")
    assert imp.returncode == 0, imp.stdout + imp.stderr
    assert "新增" in imp.stdout and "检查点" in imp.stdout
    rep = run(home, "supervisor", "report", "--db", db, "--out", str(tmp_path / "r.pdf"),
              user="super")
    assert rep.returncode == 0, rep.stderr
