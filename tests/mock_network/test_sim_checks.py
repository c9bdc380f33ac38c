"""Restricted-payment drugs, diagnosis before settlement, internal errors, start-up errors."""
from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from datetime import datetime
from decimal import Decimal

import httpx

from settlement import gateway, wire
from settlement.mock_network.app import create_app
from settlement.mock_network.registry import REFERENCE_DATE, build_registry
from settlement.mock_network.tx import HANDLERS

from .conftest import CATALOGUE, INST, ROOT, Client, fee, q1101, q2201, q2203, q2206

REG = build_registry()
_people = iter(v for v in REG[1200:] if v.insutype == "390" and v.insu_state == "1"
               and v.card_expiry_date > REFERENCE_DATE)


def _visit(c: Client):
    v = next(_people)
    c.ok("1101", q1101(v))
    mid = c.ok("2201", q2201(v.psn_no, "390", f"MZK{time.time_ns()}"))["data"]["mdtrt_id"]
    return v.psn_no, mid


OMEPRAZOLE = "XA02BCA211A012010100001"  # restricted to K21/K25/K27 in sim_catalogue.csv


def test_sim_restricted_drug_without_matching_diagnosis_is_self_paid_with_a_warning(client: Client):
    psn, mid = _visit(client)
    client.ok("2203", q2203(mid, psn))  # I10 only
    out = client.call("2204", {"feedetail": [fee(mid, psn, "1", OMEPRAZOLE, "1", "24.00")]})
    line = out["output"]["result"][0]
    assert (line["fulamt_ownpay_amt"], line["inscp_scp_amt"], line["lmt_used_flag"]) == (
        Decimal("24.00"), Decimal("0.00"), "1")
    assert "限定支付" in out["warn_msg"]
    pre = client.call("2206", q2206(psn, mid, "390", Decimal("24.00")))
    assert pre["output"]["setlinfo"]["fulamt_ownpay_amt"] == Decimal("24.00")
    assert "限定支付" in pre["warn_msg"]
    # with the matching diagnosis recorded, the fund's scope applies (乙类: 10 % first)
    q = q2203(mid, psn)
    q["diseinfo"].append({**q["diseinfo"][0], "diag_srt_no": "2", "diag_code": "K21.9", "diag_name": "胃食管反流病"})
    client.ok("2203", q)
    pre = client.call("2206", q2206(psn, mid, "390", Decimal("24.00")))
    s = pre["output"]["setlinfo"]
    assert (s["preselfpay_amt"], s["inscp_scp_amt"], pre["warn_msg"]) == (Decimal("2.40"), Decimal("21.60"), "")


def test_sim_settlement_needs_a_diagnosis_first(client: Client):
    psn, mid = _visit(client)
    client.ok("2204", {"feedetail": [fee(mid, psn, "1", "XB01ACA056A012030101554", "1", "15.60")]})
    out = client.call("2206", q2206(psn, mid, "390", Decimal("15.60")))
    assert out["infcode"] == -1 and "2203" in out["err_msg"]


def test_sim_internal_error_is_http_500_and_not_remembered(tmp_path, monkeypatch):
    app = create_app(f"sqlite:///{tmp_path / 'e.db'}", catalogue_path=str(CATALOGUE))
    body = wire.dumps(wire.envelope(
        infno="9001", msgid=wire.make_msgid(INST.fixmedins_code, datetime.now(), 1), institution=INST,
        opter="001", opter_name="x", now=datetime.now(), input={"signIn": {"opter_no": "001"}}))

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as c:
            return await c.post(wire.SERVICE_PATH, content=body, headers=gateway.sign_headers(
                gateway.DEFAULT_PAAS_ID, gateway.DEFAULT_PAAS_TOKEN))

    real = HANDLERS["9001"]

    def boom(ctx, inp):
        raise RuntimeError("bug")
    boom.needs_sign_in = False
    monkeypatch.setitem(HANDLERS, "9001", boom)
    r = asyncio.run(post())
    assert r.status_code == 500 and wire.loads(r.content)["infcode"] == -1
    monkeypatch.setitem(HANDLERS, "9001", real)
    r = asyncio.run(post())  # same msgid: processed now, since the failure was not an answer
    assert r.status_code == 200 and wire.loads(r.content)["infcode"] == 0


def test_sim_refuses_to_start_on_a_busy_port(tmp_path):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        p = subprocess.run([sys.executable, "-m", "settlement.mock_network", "--port",
                            str(busy.getsockname()[1]), "--db", f"sqlite:///{tmp_path / 'p.db'}"],
                           cwd=ROOT, capture_output=True, text=True, timeout=30, check=False)
    finally:
        busy.close()
    assert p.returncode != 0 and "cannot start" in p.stderr and p.stdout == ""


def test_sim_logs_hold_no_name_or_id_number_and_stdout_only_the_banner(tmp_path):
    import signal

    from settlement.mock_network.registry import default_villager

    from .conftest import SimProcess, new_visit, settle_visit
    log = tmp_path / "sim.log"
    p = SimProcess(f"sqlite:///{tmp_path / 'l.db'}", "--log-level", "DEBUG", stderr_path=log).start()
    try:
        c = Client(p.url)
        c.sign_in()
        v = default_villager()
        psn, mid, total = new_visit(c, v)
        settle_visit(c, psn, mid, "390", total)
        bad = q1101(v)
        bad["data"]["psn_name"] = "错名字"
        c.call("1101", bad)
        c.close()
    finally:
        p.proc.send_signal(signal.SIGINT)
        assert p.proc.wait(10) == 0
    rest = p.proc.stdout.read()
    assert rest == b""  # exactly one line on stdout
    text = log.read_text(encoding="utf-8")
    assert "2207" in text  # the log is there...
    for secret in (v.psn_name, v.certno, v.card_no, v.card_sn, "错名字"):
        assert secret not in text  # ...without identifiers


def test_sim_catalogue_from_the_formulary_file_and_tolerates_a_missing_one(tmp_path):
    from settlement.mock_network.catalogue import FORMULARY_CSV, catalogue
    missing = catalogue(path=tmp_path / "none.csv")
    assert list(missing) == ["001102000010000"]  # only the consultation fee
    mine = catalogue(path=CATALOGUE)
    assert mine["XJ01CAA040A001010405611"].chrgitm_lv == "02"
    assert mine["XJ01CAA040A001010405611"].ceiling_fen == 800
    assert mine[OMEPRAZOLE].restrict_dx == ("K21", "K25", "K27")
    if FORMULARY_CSV.exists():
        real = catalogue()
        assert len(real) > 100 and {i.chrgitm_lv for i in real.values()} <= {"01", "02", "03"}


def test_sim_absurd_amounts_are_refused_not_crashing(client: Client):
    psn, mid = _visit(client)
    client.ok("2203", q2203(mid, psn))
    client.ok("2204", {"feedetail": [fee(mid, psn, "1", "XB01ACA056A012030101554", "1", "15.60")]})
    for bad in (Decimal("1E+30"), "12.345", "abc", True):
        out = client.call("2206", q2206(psn, mid, "390", bad))
        assert out["infcode"] == -1 and "medfee_sumamt" in out["err_msg"], (bad, out)
