"""Start the simulator as a real subprocess and talk to it with signed httpx requests."""
from __future__ import annotations

import contextlib
import itertools
import os
import selectors
import subprocess
import sys
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from settlement import gateway, wire
from settlement.mock_network.registry import default_villager

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CATALOGUE = HERE / "sim_catalogue.csv"
INST = wire.Institution()
_serial = itertools.count(int(time.time()) % 5000)


class SimProcess:
    def __init__(self, db_url: str, *extra: str, stderr_path: Path | None = None):
        self.db_url = db_url
        self.extra = extra
        self.stderr_path = stderr_path
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> SimProcess:
        cmd = [sys.executable, "-m", "settlement.mock_network", "--port", "0", "--db", self.db_url,
               "--catalogue", str(CATALOGUE), *self.extra]
        with contextlib.ExitStack() as stack:
            err = stack.enter_context(open(self.stderr_path, "wb")) if self.stderr_path \
                else subprocess.DEVNULL
            self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=err,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout=20):
            self.stop()
            raise RuntimeError("simulator did not start within 20 s")
        line = self.proc.stdout.readline().decode().strip()
        prefix = "insurer simulator listening on "
        assert line.startswith(prefix), line
        self.url = line[len(prefix):]
        return self

    def stop(self) -> int | None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode if self.proc else None


class Client:
    """Builds envelopes with wire.envelope and signs each request with gateway.sign_headers."""

    def __init__(self, url: str, inst: wire.Institution = INST):
        self.url = url
        self.inst = inst
        self.http = httpx.Client(base_url=url, timeout=10)
        self.sign_no = ""

    def msgid(self) -> str:
        return wire.make_msgid(self.inst.fixmedins_code, datetime.now(), next(_serial))

    def body(self, infno: str, inp: dict, *, msgid: str | None = None, sign_no: str | None = None,
             insuplc: str = "310116") -> bytes:
        env = wire.envelope(infno=infno, msgid=msgid or self.msgid(), institution=self.inst,
                            opter="001", opter_name="操作员", now=datetime.now(), input=inp,
                            sign_no=self.sign_no if sign_no is None else sign_no,
                            insuplc_admdvs=insuplc)
        return wire.dumps(env)

    def post(self, body: bytes, headers: dict | None = None) -> httpx.Response:
        h = headers if headers is not None else gateway.sign_headers(gateway.DEFAULT_PAAS_ID,
                                                                     gateway.DEFAULT_PAAS_TOKEN)
        return self.http.post(wire.SERVICE_PATH, content=body,
                              headers={**h, "content-type": "application/json"})

    def call(self, infno: str, inp: dict, **kw) -> dict:
        r = self.post(self.body(infno, inp, **kw))
        assert r.status_code == 200, r.text
        return wire.loads(r.content)

    def ok(self, infno: str, inp: dict, **kw) -> dict:
        out = self.call(infno, inp, **kw)
        assert out["infcode"] == 0, out["err_msg"]
        return out["output"]

    def sign_in(self) -> str:
        self.sign_no = self.ok("9001", {"signIn": {"opter_no": "001", "mac": "00-11-22-33-44-55",
                                                    "ip": "127.0.0.1"}}, sign_no="")["signinoutb"]["sign_no"]
        return self.sign_no

    def close(self) -> None:
        self.http.close()


# ---- the visit, as the client sends it -----------------------------------------------

NOW = "2026-11-30 09:00:00"


def q1101(v=None) -> dict:
    v = v or default_villager()
    return {"data": {"mdtrt_cert_type": "03", "mdtrt_cert_no": v.card_no, "card_sn": v.card_sn,
                     "begntime": NOW, "psn_cert_type": "01", "certno": v.certno,
                     "psn_name": v.psn_name}}


def q2201(psn_no: str, insutype: str, otp: str, card_no: str = "") -> dict:
    return {"data": {"psn_no": psn_no, "insutype": insutype, "begntime": NOW,
                     "mdtrt_cert_type": "03", "mdtrt_cert_no": card_no or "S00000000",
                     "ipt_otp_no": otp, "atddr_no": "D001", "dr_name": "村医", "dept_code": "A03",
                     "dept_name": "全科", "caty": "A03"}}


def q2203(mdtrt_id: str, psn_no: str) -> dict:
    return {"mdtrtinfo": {"mdtrt_id": mdtrt_id, "psn_no": psn_no, "med_type": "11",
                          "begntime": NOW, "main_cond_dscr": "头晕", "dise_codg": "I10",
                          "dise_name": "原发性高血压"},
            "diseinfo": [{"diag_type": "1", "diag_srt_no": "1", "diag_code": "I10",
                          "diag_name": "原发性高血压", "diag_dept": "全科", "dise_dor_no": "D001",
                          "dise_dor_name": "村医", "diag_time": NOW, "vali_flag": "1"}]}


def fee(mdtrt_id: str, psn_no: str, sn: str, code: str, cnt: str, pric: str,
        sumamt: str | None = None, bch: str = "B1") -> dict:
    total = (Decimal(cnt) * Decimal(pric)).quantize(Decimal("0.01"))
    return {"feedetl_sn": sn, "mdtrt_id": mdtrt_id, "psn_no": psn_no, "chrg_bchno": bch,
            "rxno": "RX1", "fee_ocur_time": NOW, "med_list_codg": code, "medins_list_codg": code,
            "det_item_fee_sumamt": Decimal(sumamt) if sumamt else total, "cnt": Decimal(cnt),
            "pric": Decimal(pric), "sin_dos_dscr": "1片", "used_frqu_dscr": "qd", "prd_days": 14,
            "medc_way_dscr": "口服", "bilg_dr_codg": "D001", "bilg_dr_name": "村医"}


def q2206(psn_no: str, mdtrt_id: str, insutype: str, total: Decimal, acct: str = "1") -> dict:
    return {"data": {"psn_no": psn_no, "mdtrt_cert_type": "03", "mdtrt_cert_no": "S00000000",
                     "med_type": "11", "medfee_sumamt": total, "psn_setlway": "01",
                     "mdtrt_id": mdtrt_id, "chrg_bchno": "B1", "acct_used_flag": acct,
                     "insutype": insutype}}


def q2207(pre: dict, setlinfo: dict, invono: str = "FP0001") -> dict:
    d = dict(pre["data"], invono=invono)
    for k in ("fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt"):
        d[k] = setlinfo[k]
    return {"data": d}


_otp = itertools.count(1)


def new_visit(c: Client, v=None, lines=None) -> tuple[str, str, Decimal]:
    """1101 → 2201 → 2203 → 2204; returns (psn_no, mdtrt_id, total)."""
    v = v or default_villager()
    base = c.ok("1101", q1101(v))["baseinfo"]
    psn = base["psn_no"]
    mid = c.ok("2201", q2201(psn, v.insutype, f"MZ{time.time_ns()}{next(_otp)}", v.card_no))["data"]["mdtrt_id"]
    c.ok("2203", q2203(mid, psn))
    lines = lines or [("1", "XC08CAX066A011010100002", "2", "32.40"),
                      ("2", "XJ01CAA040A001010405611", "1", "8.50"),
                      ("3", "001102000010000", "1", "10.00")]
    fd = [fee(mid, psn, *l) for l in lines]
    c.ok("2204", {"feedetail": fd})
    return psn, mid, sum(f["det_item_fee_sumamt"] for f in fd)


def settle_visit(c: Client, psn: str, mid: str, insutype: str, total: Decimal, **kw) -> dict:
    pre = q2206(psn, mid, insutype, total)
    s = c.ok("2206", pre)["setlinfo"]
    return c.ok("2207", q2207(pre, s), **kw)


from pg_helpers import pg_database  # noqa: E402,F401  (wider-scope fixtures use it)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def sim(request, tmp_path_factory):
    """The simulator as a real process, once on SQLite and once on PostgreSQL: every test that
    talks to it through `client` runs against both."""
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('sim') / 'sim.db'}"
        else:
            url = stack.enter_context(pg_database())
        p = SimProcess(url).start()
        stack.callback(p.stop)
        yield p


@pytest.fixture
def client(sim):
    c = Client(sim.url)
    c.sign_in()
    yield c
    c.close()
