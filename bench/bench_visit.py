"""The headless visit, card read to receipt, on loopback: median over repeated runs, beside its floor.

Floor (bench/floors.py): the same number of bare HTTP round trips to the same uvicorn-served
simulator's cheapest route, plus the same number of bare SQLite commits that the visit made,
sampled right after each visit so both see the same disk and CPU weather. The simulator's own
work is in the figure; bench_client_cost.py measures the client alone.
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from floors import CALLS_PER_VISIT, CommitCount, Floor
from login import first_admin_session

from clinic.config import load_settings
from clinic.counter import Counter
from clinic.services import counter_services

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 30
RX = [("xbdp", 1, 7), ("阿司匹林肠溶片", 1, 7)]


def main() -> None:
    times, floor = [], []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with counter_services(work / "services") as (network, reader):
            settings = load_settings(home=work / "home")
            counter = Counter(replace(settings, network_url=network), first_admin_session(settings))
            commits, bare = CommitCount(counter), Floor(network, work)
            try:
                counter.ensure_signed_in()  # once a day in real life; not part of a visit
                for i in range(RUNS + 1):
                    before = commits()
                    t0 = time.perf_counter()
                    card = counter.read_card(reader)
                    # The same card every time: the repeat warning is overridden, as a worker would.
                    result = counter.run_visit(counter.credential_from_card(card), RX,
                                               diagnosis="I10",
                                               overrides={"R006": "基准测试重复取药"})
                    dt = time.perf_counter() - t0
                    assert result.status == "settled", result.message
                    n_commits = commits() - before
                    base = bare.sample(CALLS_PER_VISIT, n_commits)
                    if i:  # the first visit warms imports, fonts and connections
                        times.append(dt)
                        floor.append(base)
            finally:
                bare.close()
                counter.close()
    med, base = statistics.median(times), statistics.median(floor)
    print(f"headless visit (card read -> receipt PDF), median of {RUNS}: {med * 1000:.1f} ms "
          f"(p90 {sorted(times)[int(len(times) * 0.9) - 1] * 1000:.1f} ms)")
    print(f"floor: {CALLS_PER_VISIT} bare HTTP round trips + {n_commits} bare SQLite commits "
          f"= {base * 1000:.1f} ms")
    print(f"ratio to floor: {med / base:.2f}x")


if __name__ == "__main__":
    main()
