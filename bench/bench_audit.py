"""Audit benchmarks: verifying a chain of one million events beside the floor of bare SHA-256
over the same bytes, and importing a year of four clinics into the supervisor's store.

Method (docs/audit.md): the chain is synthetic but built exactly as the clinic builds it
(clinic.audit_synth: same fields, canonical bytes, hashes, signed checkpoints at every day close
and stop), with event sizes of a real visit. Floor: hashlib.sha256(domain + line) for every line,
the least any verifier must do. Verification: clinic.audit_verify.verify_lines on the same lines
(hash, link check, seq anchors, every checkpoint's Ed25519 signature and head). Each is the best
of 3 runs. Also shown: the whole bundle (unzip, manifest signature, digests) and the clinic's
SQLite database (rows -> canonical bytes -> hash -> compare), which re-encodes every row and so
cannot reach the floor.
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
import sys
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clinic import audit_keys
from clinic.audit import _DOMAIN
from clinic.audit_export import read_bundle, verify_bundle
from clinic.audit_synth import ChainWriter, simulate_clinic
from clinic.audit_verify import verify_database, verify_lines
from clinic.db import open_database

N = int(os.environ.get("BENCH_AUDIT_EVENTS", "1000000"))
YEAR_VISITS = int(os.environ.get("BENCH_AUDIT_VISITS_PER_DAY", "30"))


def best(fn, runs=3):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def build_chain(n: int) -> ChainWriter:
    w = ChainWriter("H31011600001", Ed25519PrivateKey.generate())
    day = date(2020, 1, 1)
    while w.seq < n:
        simulate_clinic(w, day, 30, 40, seed=w.seq)
        day = date.fromordinal(day.toordinal() + 30)
    # cut to exactly n events, keeping the checkpoints inside, plus one over the end
    del w.lines[n:], w.hashes[n:]
    w.seq, w.head = n, w.hashes[-1]
    w.checkpoints = [c for c in w.checkpoints if c["seq"] <= n]
    w.checkpoint(datetime(2030, 1, 1), "export", seq=n)
    return w


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    t0 = time.perf_counter()
    w = build_chain(N)
    pub = audit_keys.public_raw(w.key)
    lines = w.lines
    nbytes = sum(len(x) for x in lines)
    print(f"chain: {N} events, {nbytes / N:.0f} bytes each on average, {len(w.checkpoints)} "
          f"signed checkpoints (built in {time.perf_counter() - t0:.1f} s)", flush=True)

    sha = hashlib.sha256

    def floor():
        for x in lines:
            sha(_DOMAIN + x).hexdigest()
    t_floor, _ = best(floor)

    def walk():
        return verify_lines(lines, checkpoints=w.checkpoints, public_key=pub)
    t_verify, report = best(walk)
    assert report.status == "ok", report
    floor_rate, verify_rate = N / t_floor, N / t_verify
    print(f"floor   bare SHA-256 of the same bytes : {floor_rate:12,.0f} events/s")
    print(f"verify  chain + checkpoints (in memory): {verify_rate:12,.0f} events/s  "
          f"ratio {verify_rate / floor_rate:.2f} of the floor (target >= 0.50)", flush=True)

    bundle = w.write_bundle(work / "chain.zip")
    t_bundle, report = best(lambda: verify_bundle(read_bundle(bundle), pub), runs=1)
    assert report.status == "ok", report
    print(f"verify  whole bundle (unzip+manifest) : {N / t_bundle:12,.0f} events/s  "
          f"ratio {N / t_bundle / floor_rate:.2f}  ({bundle.stat().st_size / 1e6:.0f} MB zip)",
          flush=True)

    db = work / "clinic.db"
    open_database(db).dispose()
    con = sqlite3.connect(db)
    import json
    rows = [(*json.loads(x), h) for x, h in zip(lines, w.hashes)]
    con.executemany("INSERT INTO audit_event (seq, ts, clinic, terminal, operator, role, action, "
                    "object, outcome, details, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    rows)
    con.executemany("INSERT INTO audit_checkpoint (clinic, seq, head_hash, ts, reason, key_id, "
                    "signature) VALUES (:clinic,:seq,:head_hash,:ts,:reason,:key_id,:signature)",
                    w.checkpoints)
    con.commit()
    con.close()
    del rows
    engine = open_database(db)
    t_db, report = best(lambda: verify_database(engine, pub, []), runs=1)
    assert report.status == "ok", report
    print(f"verify  clinic SQLite database        : {N / t_db:12,.0f} events/s  "
          f"ratio {N / t_db / floor_rate:.2f}", flush=True)
    engine.dispose()
    w.lines.clear()
    w.hashes.clear()

    # ---- a year of four clinics into the supervisor's store ----------------------------
    from clinic.supervisor.store import Store
    bundles, total = [], 0
    t0 = time.perf_counter()
    for i in range(4):
        c = ChainWriter(f"H3101160000{i + 1}", Ed25519PrivateKey.generate())
        simulate_clinic(c, date(2026, 1, 1), 365, YEAR_VISITS, seed=i, town_key=b"k" * 32)
        total += len(c.lines)
        bundles.append(c.write_bundle(work / f"year-{i + 1}.zip", "2026-01-01", "2026-12-31"))
    print(f"year: 4 clinics x 365 days x {YEAR_VISITS} visits = {total:,} events "
          f"(built in {time.perf_counter() - t0:.1f} s)", flush=True)
    urls = [("SQLite", f"sqlite:///{work / 'town.db'}")]
    if os.environ.get("CLINIC_TEST_PG_URL"):
        urls.append(("PostgreSQL", _fresh_pg(os.environ["CLINIC_TEST_PG_URL"])))
    for name, url in urls:
        store = Store(url)
        t0 = time.perf_counter()
        for b in bundles:
            store.import_bundle(b)
        dt = time.perf_counter() - t0
        print(f"import  {name:10} (verify + store)      : {total / dt:12,.0f} events/s "
              f"({dt:.1f} s for the year)", flush=True)
        t0 = time.perf_counter()
        from clinic.supervisor.report import write_report
        _, _, data = write_report(store, work / f"report-{name}.pdf")
        print(f"report  {name:10} year PDF + CSV         : {time.perf_counter() - t0:.1f} s, "
              f"{len(data.findings):,} findings", flush=True)
        store.close()


def _fresh_pg(base: str) -> str:
    import uuid

    from sqlalchemy import create_engine, text
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.rsplit("/", 1)[0] + "/" + name


if __name__ == "__main__":
    sys.exit(main())
