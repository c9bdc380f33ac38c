"""The client-side cost of one visit (journal writes, sealing, signing, parsing, audit, state),
as a ratio to its floor: the same number of bare HTTP round trips plus bare SQLite commits
(bench/floors.py): `GET /health` through the client's own HTTP stack (stdlib http.client), and
an INSERT + `commit()` on a held DBAPI connection with the clinic's settings, the floor's WAL
wrapped as a clinic database's is. Three more floors are sampled beside it and printed: the
same bare operations in the visit's own order (a round trip right after a commit costs more
than back to back), the commits through `engine.begin()` (how the floor was first made), and
that with httpx round trips (before the client left httpx).

The insurer is a replay server (bench/replay_insurer.py) answering with answers recorded from
the real simulator, on the same server stack, so its own work does not count against the client.
The receipt PDF is timed separately; card reading has its own benchmark.

A second, instrumented pass (bench/decompose.py) splits a visit and the floor into the time
spent in commit() calls, in HTTP exchanges and in everything else, so the part of the ratio
that the disk and the network alone make is printed beside the whole.
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

from sqlalchemy import text

from clinic.config import load_settings
from clinic.counter import Counter
from clinic.receipt import ReceiptHeader, receipt_lines, write_pdf
from clinic.services import _wait_line, start_simulator
from decompose import split, timed_io
from login import first_admin_session
from floors import CALLS_PER_VISIT, CommitCount, Floor
from settlement.values import Credential

RUNS = 100
SPLIT_RUNS = 50
RX = [("xbdp", 1, 7), ("阿司匹林肠溶片", 1, 7)]
HERE = Path(__file__).parent


def new_counter(settings) -> Counter:
    """A counter on a fresh data directory, acting for its first administrator."""
    return Counter(settings, first_admin_session(settings))


def record(work: Path) -> tuple[dict[str, str], str]:
    """One real visit against the simulator; keep each transaction's answer."""
    from settlement.mock_network import registry
    sim = start_simulator(work / "insurer.db")
    try:
        counter = new_counter(replace(load_settings(home=work / "rec"), network_url=sim.address))
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


def visit_order(counter: Counter, commits: CommitCount, cred: Credential) -> str:
    """One visit's bare operations in the order it makes them ("c" commit, "h" round trip),
    read from the commit count at each send of the client (wrapped for this visit only)."""
    ops: list[str] = []
    seen = [commits()]
    send = counter.client.send

    def counting_send(*args, **kwargs):
        now = commits()
        ops.append("c" * (now - seen[0]) + "h")
        seen[0] = now
        return send(*args, **kwargs)
    counter.client.send = counting_send
    try:
        counter.run_visit(cred, RX, diagnosis="I10", overrides={"R006": "基准测试重复取药"})
    finally:
        del counter.client.send  # the class's own method again
    ops.append("c" * (commits() - seen[0]))
    return "".join(ops)


def decomposition(url: str, work: Path, certno: str) -> list[tuple[float, ...]]:
    """Instrumented visits on a fresh counter, each followed by a strict floor sample:
    per pair, (visit, commit, http, rest, floor, commit, http, rest) in seconds."""
    with timed_io():
        counter = new_counter(replace(load_settings(home=work / "split"), network_url=url))
        commits = CommitCount(counter)
        strict = Floor(url, work, http="stdlib", commits="dbapi")
        strict.warm()
        counter.ensure_signed_in()
        counter._with_receipt = lambda settlement, person, **kw: settlement
        cred = Credential("02", certno, certno=certno)
        rows = []
        for i in range(SPLIT_RUNS + 5):
            before = commits()
            visit = split(lambda: counter.run_visit(cred, RX, diagnosis="I10",
                                                    overrides={"R006": "基准测试重复取药"}))
            n_commits = commits() - before
            floor = split(lambda n=n_commits: strict.sample(CALLS_PER_VISIT, n))
            if i >= 5:  # warm-up
                rows.append(visit + floor)
        strict.close()
        counter.close()
    return rows


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
            counter = new_counter(replace(load_settings(home=work / "bench"), network_url=url))
            commits = CommitCount(counter)
            strict = Floor(url, work, http="stdlib", commits="dbapi")
            floors = {"strict": strict.sample, "engine": Floor(url, work, http="stdlib").sample,
                      "first": Floor(url, work).sample}
            counter.ensure_signed_in()
            cred = Credential("02", certno, certno=certno)
            visit_times: list[float] = []
            floor: dict[str, list[float]] = {name: [] for name in (*floors, "ordered")}
            # The receipt PDF is timed on its own below; here the visit stops at the settlement.
            counter._with_receipt = lambda settlement, person, **kw: settlement
            # From the second visit on, the patient has history: R006 warns and is overridden.
            counter.run_visit(cred, RX, diagnosis="I10", overrides={"R006": "基准测试重复取药"})
            ops = visit_order(counter, commits, cred)
            for f in {*(m.__self__ for m in floors.values())}:
                f.warm()
            floors["ordered"] = lambda _h, _c: strict.sample_ordered(ops)
            # Visit and floor samples alternate, so both see the same disk and CPU weather.
            for i in range(RUNS + 1):
                before = commits()
                t0 = time.perf_counter()
                result = counter.run_visit(cred, RX, diagnosis="I10",
                                           overrides={"R006": "基准测试重复取药"})
                dt = time.perf_counter() - t0
                assert result.status == "settled", result.message
                n_commits = commits() - before
                assert n_commits == ops.count("c"), (n_commits, ops)
                names = list(floors)  # taken in turns, so no floor always goes first
                names = names[i % len(names):] + names[:i % len(names)]
                bases = {name: floors[name](CALLS_PER_VISIT, n_commits) for name in names}
                if i:  # the first visit warms imports and connections
                    visit_times.append(dt)
                    for name, base in bases.items():
                        floor[name].append(base)
            for f in {*(m.__self__ for m in floors.values() if hasattr(m, "__self__"))}:
                f.close()
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
            rows = decomposition(url, work, certno)
        finally:
            proc.terminate()
            proc.wait(10)
    med = statistics.median(visit_times)
    strict, ordered, engine, first = (statistics.median(floor[n])
                                      for n in ("strict", "ordered", "engine", "first"))
    print(f"client-side visit cost (1101..2207, no PDF), median of {RUNS}: {med * 1000:.1f} ms")
    print(f"floor: {CALLS_PER_VISIT} bare HTTP round trips (http.client GET) + {n_commits} bare "
          f"SQLite commits (an INSERT and commit() on a held DBAPI connection; WAL, "
          f"synchronous=FULL) = {strict * 1000:.1f} ms")
    print(f"ratio to floor: {med / strict:.2f}x (target <= 1.5x: "
          f"{'met' if med / strict <= 1.5 else 'not met'})")
    print(f"  the same bare operations in the visit's own order ({ops}): "
          f"{ordered * 1000:.1f} ms, ratio {med / ordered:.2f}x")
    print(f"  the commits through engine.begin() (the floor's first definition): "
          f"{engine * 1000:.1f} ms, ratio {med / engine:.2f}x")
    print(f"  the round trips through httpx, commits through engine.begin(): "
          f"{first * 1000:.1f} ms, ratio {med / first:.2f}x")
    print(f"receipt PDF (80 mm, embedded CJK subset), median of 20: "
          f"{statistics.median(pdf_times) * 1000:.1f} ms")
    _, vc, vh, vr, f, fc, fh, fr = (statistics.median(col) * 1000 for col in zip(*rows))
    print(f"where the time goes (instrumented pass, median of {SPLIT_RUNS}; strict floor):")
    print(f"  commit() calls: visit {vc:.2f} ms vs floor {fc:.2f} ms ({vc / fc:.2f}x); "
          f"HTTP exchanges: {vh:.2f} vs {fh:.2f} ms ({vh / fh:.2f}x); "
          f"everything else: {vr:.2f} vs {fr:.2f} ms")
    print(f"  the disk and the network alone: {(vc + vh) / f:.2f}x the floor; at 1.5x the "
          f"client's own work would have {max(0.0, 1.5 * f - vc - vh):.2f} ms, it takes {vr:.2f} ms")


if __name__ == "__main__":
    main()
