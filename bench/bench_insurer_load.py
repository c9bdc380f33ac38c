"""Load on the insurer simulator: N concurrent counters through complete visits
(1101 → 2201 → 2203 → 2204 → 2206 → 2207), on SQLite and on PostgreSQL, beside its floor.

`python bench/run.py insurer_load [--counters 8] [--seconds 20] [--backends sqlite,postgresql]
[--workers 1]`. The simulator runs as a real process (`python -m settlement.mock_network`).
PostgreSQL: a throwaway cluster of its own, started here WITH fsync and synchronous_commit on
(the test cluster of scripts/test-postgres.sh runs with fsync off and would flatter it).

Each counter is a thread with its own institution code, sign-in, keep-alive HTTP connection
(http.client) and patients (no two counters share a patient, as no two clinics share one at
the same minute). Every request is a real envelope with fresh x-tif-* signature headers; every
answer is checked: HTTP 200, infcode 0, and for 2206/2207 the setlinfo identities and 2207's
amounts equal to 2206's. Latency is per call, from the request's send to its answer read in
full (the headers are signed inside that window; building the body and parsing the answer
are outside it, as before). Reported:
complete visits per second, per-call latency p50/p95/p99, and the floor: the same number of
threads doing GET /health (the cheapest route of the same server) for the same time, with
the ratio of a call to it. The load generator runs on the same 2-core machine and takes CPU
from the server: the figures are for the pair.
"""
from __future__ import annotations

import argparse
import http.client
import itertools
import os
import selectors
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

from settlement import gateway, wire
from settlement.mock_network.catalogue import catalogue
from settlement.mock_network.registry import REFERENCE_DATE, build_registry, states

ROOT = Path(__file__).resolve().parents[1]
NOW = "2026-11-30 09:00:00"


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="bench_insurer_load")
    ap.add_argument("--counters", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--workers", type=int, default=1, help="simulator worker processes")
    argv = [a for a in sys.argv[1:] if a != "insurer_load"]
    return ap.parse_args(argv)


# ---- a throwaway PostgreSQL with fsync on -------------------------------------------------

@contextmanager
def postgres_cluster(port: int = 55491):
    bin_dir = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: p.parent.name)
    if not bin_dir:
        raise RuntimeError("no PostgreSQL server installed")
    b = bin_dir[-1]
    data = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    root = os.geteuid() == 0

    def as_pg(*cmd):
        full = (["runuser", "-u", "postgres", "--"] if root else []) + [str(c) for c in cmd]
        subprocess.run(full, check=True, stdout=subprocess.DEVNULL)

    if root:
        shutil.chown(data, "postgres")
    as_pg(b / "initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8",
          "--locale=C.UTF-8")
    # fsync and synchronous_commit stay at their defaults (on): honest commit costs.
    as_pg(b / "pg_ctl", "-D", data, "-l", data / "server.log", "-w", "-t", "60", "-o",
          f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c max_connections=200 "
          f"-c shared_buffers=128MB", "start")
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    PG_DATA[url] = data
    try:
        yield url
    finally:
        as_pg(b / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
        shutil.rmtree(data, ignore_errors=True)


# ---- CPU accounting (Linux /proc) ---------------------------------------------------------

TICK = os.sysconf("SC_CLK_TCK")


def _tree_cpu(root: int) -> float:
    """CPU seconds (user + system) of a process and all its descendants alive now."""
    stats = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                f = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(d.name)] = (int(f[1]), (int(f[11]) + int(f[12])) / TICK)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            total += stats[pid][1]
        todo += [c for c, (ppid, _) in stats.items() if ppid == pid]
    return total


def postmaster_pid(url: str) -> int | None:
    data = PG_DATA.get(url)
    if data is None:
        return None
    try:
        return int((data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


PG_DATA: dict[str, Path] = {}


# ---- the simulator --------------------------------------------------------------------------

@contextmanager
def simulator(db_url: str, workers: int):
    cmd = [sys.executable, "-m", "settlement.mock_network", "--port", "0", "--db", db_url]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout=60):
            raise RuntimeError("simulator did not start")
        line = proc.stdout.readline().decode().strip()
        yield line.rsplit(" ", 1)[-1], proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---- counters -------------------------------------------------------------------------------

@dataclass
class Stats:
    calls: list[float] = field(default_factory=list)     # seconds per call
    visits: int = 0
    errors: int = 0


class Http:
    """One keep-alive HTTP/1.1 connection over loopback (http.client: the load generator shares
    the 2 cores with the server, and httpx spent about twice the CPU per call). Every answer
    is read in full; a dropped connection is opened again by the next request."""

    def __init__(self, url: str):
        u = urlsplit(url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None) -> tuple[int, bytes]:
        try:
            self.conn.request(method, path, body=body, headers=headers or {})
            r = self.conn.getresponse()
            return r.status, r.read()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            raise

    def close(self) -> None:
        self.conn.close()


def signed() -> dict:
    return {**gateway.sign_headers(gateway.DEFAULT_PAAS_ID, gateway.DEFAULT_PAAS_TOKEN),
            "content-type": "application/json"}


class CounterClient:
    def __init__(self, url: str, n: int, people: list, lines: list[tuple[str, str, str]]):
        self.inst = wire.Institution(fixmedins_code=f"H310116{n:05d}")
        self.http = Http(url)
        self.people = itertools.cycle(people)
        self.lines = lines
        self.serial = itertools.count()
        self.sign_no = ""
        self.otp = itertools.count(1)
        self.n = n

    def msgid(self) -> str:
        # 4-digit serial per second of the msgid: plenty for one counter.
        return wire.make_msgid(self.inst.fixmedins_code, datetime.now(), next(self.serial) % 10_000)

    def call(self, infno: str, inp: dict, stats: Stats | None) -> dict:
        env = wire.envelope(infno=infno, msgid=self.msgid(), institution=self.inst, opter="001",
                            opter_name="操作员", now=datetime.now(), input=inp,
                            sign_no=self.sign_no, insuplc_admdvs="310116")
        body = wire.dumps(env)
        t0 = time.perf_counter()
        status, content = self.http.request("POST", wire.SERVICE_PATH, body, signed())
        dt = time.perf_counter() - t0
        out = wire.loads(content)
        if status != 200 or out["infcode"] != 0:
            raise RuntimeError(f"{infno}: {status} {out.get('err_msg')}")
        if stats is not None:
            stats.calls.append(dt)
        return out["output"]

    def sign_in(self) -> None:
        self.sign_no = self.call("9001", {"signIn": {"opter_no": "001", "mac": "00-00-00-00-00-00",
                                                      "ip": "127.0.0.1"}}, None)["signinoutb"]["sign_no"]

    def visit(self, stats: Stats) -> None:
        v = next(self.people)
        psn = self.call("1101", {"data": {
            "mdtrt_cert_type": "03", "mdtrt_cert_no": v.card_no, "card_sn": v.card_sn,
            "begntime": NOW, "psn_cert_type": "01", "certno": v.certno,
            "psn_name": v.psn_name}}, stats)["baseinfo"]["psn_no"]
        mid = self.call("2201", {"data": {
            "psn_no": psn, "insutype": v.insutype, "begntime": NOW, "mdtrt_cert_type": "03",
            "mdtrt_cert_no": v.card_no, "ipt_otp_no": f"B{self.n:02d}{time.time_ns()}{next(self.otp)}",
            "atddr_no": "D001", "dr_name": "村医", "dept_code": "A03", "dept_name": "全科",
            "caty": "A03"}}, stats)["data"]["mdtrt_id"]
        self.call("2203", {"mdtrtinfo": {"mdtrt_id": mid, "psn_no": psn, "med_type": "11",
                                         "begntime": NOW, "dise_codg": "I10",
                                         "dise_name": "原发性高血压"},
                           "diseinfo": [{"diag_type": "1", "diag_srt_no": "1", "diag_code": "I10",
                                         "diag_name": "原发性高血压", "diag_dept": "全科",
                                         "dise_dor_no": "D001", "dise_dor_name": "村医",
                                         "diag_time": NOW, "vali_flag": "1"}]}, stats)
        fees = []
        for i, (code, cnt, pric) in enumerate(self.lines, 1):
            total = (Decimal(cnt) * Decimal(pric)).quantize(Decimal("0.01"))
            fees.append({"feedetl_sn": str(i), "mdtrt_id": mid, "psn_no": psn, "chrg_bchno": "B1",
                         "rxno": "RX1", "fee_ocur_time": NOW, "med_list_codg": code,
                         "medins_list_codg": code, "det_item_fee_sumamt": total,
                         "cnt": Decimal(cnt), "pric": Decimal(pric), "bilg_dr_codg": "D001",
                         "bilg_dr_name": "村医"})
        self.call("2204", {"feedetail": fees}, stats)
        pre = {"data": {"psn_no": psn, "mdtrt_cert_type": "03", "mdtrt_cert_no": v.card_no,
                        "med_type": "11", "medfee_sumamt": sum(f["det_item_fee_sumamt"] for f in fees),
                        "psn_setlway": "01", "mdtrt_id": mid, "chrg_bchno": "B1",
                        "acct_used_flag": "1", "insutype": v.insutype}}
        s = check_setlinfo(self.call("2206", pre, stats)["setlinfo"], pre["data"]["medfee_sumamt"])
        d = dict(pre["data"], invono="FP0001")
        for k in ("fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt"):
            d[k] = s[k]
        done = check_setlinfo(self.call("2207", {"data": d}, stats)["setlinfo"], d["medfee_sumamt"])
        if not done["setl_id"] or any(done[k] != s[k] for k in AMOUNTS):
            raise RuntimeError(f"2207 {mid}: no setl_id, or amounts differ from 2206's")
        stats.visits += 1


AMOUNTS = ("medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt",
           "inscp_scp_amt", "fund_pay_sumamt", "psn_part_amt", "hosp_part_amt", "acct_pay",
           "psn_cash_pay")


def check_setlinfo(s: dict, total: Decimal) -> dict:
    """The identities of protocol.md §2 that every setlinfo must keep, and the fee total."""
    ok = (s["medfee_sumamt"] == total
          == s["fulamt_ownpay_amt"] + s["overlmt_selfpay"] + s["preselfpay_amt"] + s["inscp_scp_amt"]
          == s["fund_pay_sumamt"] + s["psn_part_amt"] + s["hosp_part_amt"]
          and s["psn_part_amt"] == s["acct_pay"] + s["psn_cash_pay"])
    if not ok:
        raise RuntimeError(f"setlinfo of {s['mdtrt_id']} breaks an identity: {s}")
    return s


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))] * 1000 if xs else float("nan")


def run_phase(n: int, seconds: float, work) -> list:
    """n threads run work(i, stats, stop) until stop; returns their Stats."""
    stop = threading.Event()
    stats = [Stats() for _ in range(n)]
    threads = [threading.Thread(target=work, args=(i, stats[i], stop), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(60)
    return stats


def load(url: str, args, server_pid: int, pg_pid: int | None) -> dict:
    items = catalogue()
    drugs = [c for c, it in items.items() if not it.consultation and it.chrgitm_lv in ("01", "02")
             and not it.restrict_dx][:2]
    lines = [(drugs[0], "2", "12.30"), (drugs[1], "1", "8.50"),
             (next(c for c, it in items.items() if it.consultation), "1", "10.00")]
    plain = [v for v in build_registry() if states(v, REFERENCE_DATE) == ("normal",)]
    counters = [CounterClient(url, i, plain[i::args.counters], lines) for i in range(args.counters)]
    for c in counters:
        c.sign_in()

    def counter_work(i, st, stop):
        while not stop.is_set():
            try:
                counters[i].visit(st)
            except Exception as exc:  # noqa: BLE001 - counted and shown, the run goes on
                st.errors += 1
                if st.errors <= 3:
                    print(f"  counter {i}: {exc}", flush=True)

    run_phase(args.counters, args.warmup, counter_work)  # connections, caches, JIT-free warmup
    cpu0 = (_tree_cpu(server_pid), time.process_time(), _tree_cpu(pg_pid) if pg_pid else 0.0)
    t0 = time.perf_counter()
    stats = run_phase(args.counters, args.seconds, counter_work)
    elapsed = time.perf_counter() - t0
    cpu1 = (_tree_cpu(server_pid), time.process_time(), _tree_cpu(pg_pid) if pg_pid else 0.0)
    calls = [x for s in stats for x in s.calls]
    visits = sum(s.visits for s in stats)

    def health_work(i, st, stop):
        h = Http(url)
        try:
            while not stop.is_set():
                t = time.perf_counter()
                status, _ = h.request("GET", "/health")
                st.calls.append(time.perf_counter() - t)
                if status != 200:
                    raise RuntimeError(f"/health: {status}")
        finally:
            h.close()

    run_phase(args.counters, 1.0, health_work)
    th = time.perf_counter()
    hstats = run_phase(args.counters, min(args.seconds, 10.0), health_work)
    helapsed = time.perf_counter() - th
    hcalls = [x for s in hstats for x in s.calls]
    for c in counters:
        c.http.close()
    return {"visits_s": visits / elapsed, "calls_s": len(calls) / elapsed,
            "p50": pct(calls, 50), "p95": pct(calls, 95), "p99": pct(calls, 99),
            "errors": sum(s.errors for s in stats), "visits": visits,
            "h_s": len(hcalls) / helapsed, "h50": pct(hcalls, 50), "h95": pct(hcalls, 95),
            "h99": pct(hcalls, 99),
            "cpu_server": (cpu1[0] - cpu0[0]) / max(visits, 1) * 1000,
            "cpu_client": (cpu1[1] - cpu0[1]) / max(visits, 1) * 1000,
            "cpu_db": (cpu1[2] - cpu0[2]) / max(visits, 1) * 1000,
            "load": os.getloadavg()[0]}


def report(name: str, r: dict, args) -> None:
    print(f"{name}: {r['visits_s']:.1f} complete visits/s ({r['visits']} visits, "
          f"{r['calls_s']:.0f} calls/s, {r['errors']} errors) at {args.counters} counters, "
          f"{args.workers} worker process(es)")
    print(f"  per call  p50 {r['p50']:.1f} ms  p95 {r['p95']:.1f} ms  p99 {r['p99']:.1f} ms")
    print(f"  floor GET /health, same server, {args.counters} threads: {r['h_s']:.0f} req/s, "
          f"p50 {r['h50']:.1f} ms  p95 {r['h95']:.1f} ms  p99 {r['h99']:.1f} ms")
    print(f"  ratio to floor: throughput {r['h_s'] / r['calls_s']:.1f}x fewer calls/s, "
          f"p50 {r['p50'] / r['h50']:.1f}x, p99 {r['p99'] / r['h99']:.1f}x")
    total = r["cpu_server"] + r["cpu_client"] + r["cpu_db"]
    print(f"  CPU per complete visit: simulator {r['cpu_server']:.1f} ms, PostgreSQL "
          f"{r['cpu_db']:.1f} ms, load generator {r['cpu_client']:.1f} ms; "
          f"{os.cpu_count()} cores would carry at most {os.cpu_count() * 1000 / total:.0f} visits/s "
          f"(simulator alone: {os.cpu_count() * 1000 / max(r['cpu_server'] + r['cpu_db'], 1e-9):.0f}); "
          f"1-min load average during the run {r['load']:.1f}", flush=True)


def main() -> None:
    args = parse_args()
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as tmp, \
                    simulator(f"sqlite:///{Path(tmp) / 'load.db'}", args.workers) as (url, pid):
                report("SQLite (WAL, synchronous=FULL)", load(url, args, pid, None), args)
        elif backend == "postgresql":
            with postgres_cluster() as pg, simulator(pg, args.workers) as (url, pid):
                report("PostgreSQL (fsync on, synchronous_commit on)",
                       load(url, args, pid, postmaster_pid(pg)), args)
        else:
            raise SystemExit(f"unknown backend {backend}")


if __name__ == "__main__":
    main()
