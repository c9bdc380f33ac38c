"""The headless visit, card read to receipt, on loopback: median over repeated runs, beside its floor.

Floor: the same number of bare HTTP round trips (to the same uvicorn-served simulator's cheapest
route) plus the same number of bare SQLite commits (same file settings: WAL, synchronous=FULL)
that one visit makes. The ratio says what the client's own work (journal, sealing, signing,
parsing, audit, PDF) costs on top of the I/O it cannot avoid.
"""
from __future__ import annotations

import statistics
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
from clinic.services import counter_services

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 30
RX = [("xbdp", 1, 7), ("阿司匹林肠溶片", 1, 7)]



def raw_commits(counter) -> int:
    """Commits made on DBAPI connections directly (journal, audit, transitions): the
    engine's commit event does not see them, and the floor must count them all."""
    return counter.journal.commits + db_commits["raw"]

def visit_times(counter: Counter, reader: str) -> tuple[list[float], int, int]:
    commits = {"n": 0}
    event.listen(counter.engine, "commit", lambda conn: commits.__setitem__("n", commits["n"] + 1))
    counter.ensure_signed_in()  # once a day in real life; not part of a visit
    times = []
    for i in range(RUNS + 1):
        commits["n"] = 0
        journal_before = raw_commits(counter)
        t0 = time.perf_counter()
        card = counter.read_card(reader)
        # The same card every time: the repeat-prescribing warning is overridden, as a worker would.
        result = counter.run_visit(counter.credential_from_card(card), RX, diagnosis="I10",
                                   overrides={"R006": "基准测试重复取药"})
        dt = time.perf_counter() - t0
        commits["n"] += raw_commits(counter) - journal_before  # its own DBAPI commits
        assert result.status == "settled", result.message
        if i:  # the first visit warms imports, fonts and connections
            times.append(dt)
    return times, commits["n"], 6  # 1101, 2201, 2203, 2204, 2206, 2207


def floor(network: str, n_http: int, n_commits: int, work: Path) -> float:
    samples = []
    engine = make_engine(f"sqlite:///{work / 'floor.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v BLOB)"))
    with httpx.Client(trust_env=False) as http:
        for i in range(RUNS + 1):
            t0 = time.perf_counter()
            for _ in range(n_http):
                http.get(network + "/health")
            for _ in range(n_commits):
                with engine.begin() as conn:
                    conn.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": b"x" * 512})
            if i:
                samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with counter_services(work / "services") as (network, reader):
            settings = replace(load_settings(home=work / "home"), network_url=network)
            counter = Counter(settings)
            try:
                times, commits, calls = visit_times(counter, reader)
            finally:
                counter.close()
            base = floor(network, calls, commits, work)
    med = statistics.median(times)
    print(f"headless visit (card read -> receipt PDF), median of {RUNS}: {med * 1000:.1f} ms "
          f"(p90 {sorted(times)[int(len(times) * 0.9) - 1] * 1000:.1f} ms)")
    print(f"floor: {calls} bare HTTP round trips + {commits} bare SQLite commits = {base * 1000:.1f} ms")
    print(f"ratio to floor: {med / base:.2f}x")


if __name__ == "__main__":
    main()
