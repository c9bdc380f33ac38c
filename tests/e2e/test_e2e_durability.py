"""A settlement acknowledged to the operator survives the process being killed at once."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys

from auth_helpers import ensure_admin


def test_an_acknowledged_settlement_is_still_there_after_sigkill(services, tmp_path):
    network, reader, insurer_db = services
    home = tmp_path / "clinic"
    ensure_admin(home)
    env = {**os.environ, "CLINIC_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "clinic", "settle", "--reader", reader,
                             "--rx", "xbdp:1:7", "--network", network], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    acknowledged = None
    for line in proc.stdout:
        if line.startswith("结算成功"):
            acknowledged = line.split("结算号")[1].strip()
            os.kill(proc.pid, signal.SIGKILL)  # the moment the operator has seen it
            break
    proc.wait(30)
    assert acknowledged, proc.stderr.read()
    con = sqlite3.connect(home / "clinic.db")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("SELECT state FROM visit WHERE setl_id=?", (acknowledged,)).fetchall() == [("settled",)]
    ins = sqlite3.connect(insurer_db)
    assert ins.execute("SELECT status FROM settlement WHERE setl_id=?", (acknowledged,)).fetchone() == ("normal",)
