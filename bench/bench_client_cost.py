"""The client-side cost of one visit (journal writes, sealing, signing, parsing, audit, state),
as a ratio to its floor: the same number of bare HTTP round trips plus bare SQLite commits.

The insurer is a replay server (bench/replay_insurer.py) answering with answers recorded from
the real simulator, on the same server stack, so its own work does not count against the client.
The receipt PDF is timed separately; card reading has its own benchmark.
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import httpx
from sqlalchemy import event, text

from clinic.config import load_settings
from clinic.counter import Counter
from clinic.db import COMMITS as db_commits
from clinic.db import make_engine
from clinic.receipt import ReceiptHeader, receipt_lines, write_pdf
from clinic.services import _wait_line, start_simulator
from settlement.values import Credential

RUNS = 100
RX = [("xbdp", 1, 7), ("阿司匹林肠溶片", 1, 7)]
HERE = Path(__file__).parent



def raw_commits(counter) -> int:
    """Commits made on DBAPI connections directly (journal, audit, transitions): the
    engine's commit event does not see them, and the floor must count them all."""
    return counter.journal.commits + db_commits["raw"]

def record(work: Path) -> tuple[dict[str, str], str]:
    """One real visit against the simulator; keep each transaction's answer."""
    from settlement.mock_network import registry
    sim = start_simulator(work / "insurer.db")
    try:
        counter = Counter(replace(load_settings(home=work / "rec"), network_url=sim.address))
        certno = registry.default_villager().certno
        counter.run_visit(Credential("02", certno, certno=certno), RX, diagnosis="I10")
        answers = {}
        with counter.engine.connect() as conn:
            for (msgid,) in conn.execute(text("SELECT msgid FROM journal_message")):
                e = counter.journal.entry(msgid)
                answers[e["infno"]] = e["answer"].decode("utf-8")
        counter.close()
        return answers, certno
    finally:
        sim.stop()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        answers, certno = record(work)
        (work / "answers.json").write_text(json.dumps(answers), encoding="utf-8")
        proc = subprocess.Popen([sys.executable, str(HERE / "replay_insurer.py"),
                                 str(work / "answers.json")], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            url = _wait_line(proc, "listening on", 30).split()[-1]
            counter = Counter(replace(load_settings(home=work / "bench"), network_url=url))
            commits = {"n": 0}
            event.listen(counter.engine, "commit",
                         lambda conn: commits.__setitem__("n", commits["n"] + 1))
            counter.ensure_signed_in()
            cred = Credential("02", certno, certno=certno)
            visit_times: list[float] = []
            # The receipt PDF is timed on its own below; here the visit stops at the settlement.
            counter._with_receipt = lambda settlement, person, **kw: settlement
            engine = make_engine(f"sqlite:///{work / 'floor.db'}")
            with engine.begin() as conn:
                conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)"))
            floor = []
            n_calls = 6  # 1101, 2201, 2203, 2204, 2206, 2207
            # Visit and floor samples alternate, so both see the same disk and CPU weather.
            with httpx.Client(trust_env=False) as http:
                for i in range(RUNS + 1):
                    commits["n"] = 0
                    journal_before = raw_commits(counter)
                    t0 = time.perf_counter()
                    result = counter.run_visit(cred, RX, diagnosis="I10",
                                               overrides={"R006": "基准测试重复取药"})
                    dt = time.perf_counter() - t0
                    n_commits = commits["n"] + raw_commits(counter) - journal_before
                    assert result.status == "settled", result.message
                    t1 = time.perf_counter()
                    for _ in range(n_calls):
                        http.get(url + "/health")
                    for _ in range(n_commits):
                        with engine.begin() as conn:
                            conn.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": b"x" * 512})
                    if i:  # the first visit warms imports and connections
                        visit_times.append(dt)
                        floor.append(time.perf_counter() - t1)
            pdf_times = []
            rows = receipt_lines(ReceiptHeader("枫泾镇新春村卫生室", "H31011600001", "D0001", "张医生"),
                                 *counter.open_party(result.settlement.visit_id)[:1],
                                 result.items, result.settlement)
            for n in range(21):
                t = time.perf_counter()
                write_pdf(work / f"r{n}.pdf", rows)
                if n:
                    pdf_times.append(time.perf_counter() - t)
            counter.close()
        finally:
            proc.terminate()
            proc.wait(10)
    med, base = statistics.median(visit_times), statistics.median(floor)
    print(f"client-side visit cost (1101..2207, no PDF), median of {RUNS}: {med * 1000:.1f} ms")
    print(f"floor: {n_calls} bare HTTP round trips + {n_commits} bare SQLite commits "
          f"(WAL, synchronous=FULL) = {base * 1000:.1f} ms")
    print(f"ratio to floor: {med / base:.2f}x (target <= 1.5x)")
    print(f"receipt PDF (80 mm, embedded CJK subset), median of 20: "
          f"{statistics.median(pdf_times) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
