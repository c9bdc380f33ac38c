"""Fault injection: the exactly-once cases a client must survive, on a real process."""
from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from settlement import wire
from settlement.mock_network.app import create_app
from settlement.mock_network.faults import CONTROL_PATH, parse_fault
from settlement.mock_network.registry import REFERENCE_DATE, build_registry

from .conftest import Client, SimProcess, new_visit, q1101, q2206, q2207

REG = build_registry()
_people = iter(v for v in REG[900:] if v.insutype == "310" and v.balc_fen > 30000
               and v.insu_state == "1" and v.card_expiry_date > REFERENCE_DATE)


@pytest.fixture(scope="module")
def fsim(tmp_path_factory):
    p = SimProcess(f"sqlite:///{tmp_path_factory.mktemp('fault') / 'f.db'}",
                   "--fault", "2207:commit_then_drop", "--control").start()
    yield p
    p.stop()


@pytest.fixture
def fc(fsim):
    c = Client(fsim.url)
    c.sign_in()
    yield c
    c.close()


def control(c: Client, **fault) -> dict:
    r = c.http.post(CONTROL_PATH, json=fault) if fault else c.http.get(CONTROL_PATH)
    assert r.status_code == 200, r.text
    return r.json()


def ready_2207(c: Client):
    v = next(_people)
    psn, mid, total = new_visit(c, v)
    pre = q2206(psn, mid, "310", total)
    s6 = c.ok("2206", pre)["setlinfo"]
    start = c.ok("1101", q1101(v))["insuinfo"][0]["balc"]
    return v, c.body("2207", q2207(pre, s6)), start, s6


def balc(c: Client, v):
    return c.ok("1101", q1101(v))["insuinfo"][0]["balc"]


def test_sim_fault_commit_then_drop_commits_and_the_retry_gets_the_answer(fc: Client):
    assert control(fc)["faults"][0]["kind"] == "commit_then_drop"  # from --fault
    v, body, start, s6 = ready_2207(fc)
    with pytest.raises(httpx.TransportError):
        fc.post(body)
    assert balc(fc, v) == start - s6["acct_pay"]  # the insurer committed
    out = wire.loads(fc.post(body).content)     # the client resolves by asking again
    assert out["infcode"] == 0 and out["output"]["setlinfo"]["balc"] == start - s6["acct_pay"]
    assert balc(fc, v) == start - s6["acct_pay"]  # debited once


def test_sim_fault_drop_before_commit_leaves_nothing_behind(fc: Client):
    control(fc, infno="2207", kind="drop_before_commit", count=1)
    v, body, start, s6 = ready_2207(fc)
    with pytest.raises(httpx.TransportError):
        fc.post(body)
    assert balc(fc, v) == start
    out = wire.loads(fc.post(body).content)
    assert out["infcode"] == 0
    assert balc(fc, v) == start - s6["acct_pay"]


def test_sim_fault_http500_then_normal(fc: Client):
    control(fc, infno="1101", kind="http500", count=2)
    body = fc.body("1101", q1101())
    for _ in range(2):
        r = fc.post(body)
        assert r.status_code == 500 and wire.loads(r.content)["infcode"] == -1
    assert wire.loads(fc.post(body).content)["infcode"] == 0


def test_sim_fault_malformed_body(fc: Client):
    control(fc, infno="*", kind="malformed", count=1)
    r = fc.post(fc.body("1101", q1101()))
    assert r.status_code == 200
    with pytest.raises(wire.WireError):
        wire.loads(r.content)


def test_sim_fault_latency(fc: Client):
    control(fc, infno="1101A", kind="latency", count=1, seconds=0.4)
    t = time.monotonic()
    assert fc.ok("1101A", q1101())["baseinfo"]
    assert time.monotonic() - t >= 0.4
    assert control(fc)["faults"] == []


def test_sim_fault_control_clear(fc: Client):
    control(fc, infno="2201", kind="http500", count=5)
    assert fc.http.delete(CONTROL_PATH).json() == {"faults": []}


def _get(app, client_ip: str) -> int:
    async def go() -> int:
        transport = httpx.ASGITransport(app=app, client=(client_ip, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as c:
            return (await c.get(CONTROL_PATH)).status_code
    return asyncio.run(go())


def test_sim_fault_control_is_off_by_default_and_loopback_only(tmp_path):
    off = create_app(f"sqlite:///{tmp_path / 'a.db'}")
    assert _get(off, "127.0.0.1") == 404
    on = create_app(f"sqlite:///{tmp_path / 'b.db'}", control=True)
    assert _get(on, "127.0.0.1") == 200
    assert _get(on, "192.168.1.20") == 403


@pytest.mark.parametrize("spec", ["2207", "2207:explode", "2207:latency:0", "2207:latency:1:-1"])
def test_sim_fault_spec_errors(spec):
    with pytest.raises(ValueError):
        parse_fault(spec)


def test_sim_fault_spec_parsing():
    f = parse_fault("2207:latency:3:2.5")
    assert (f.infno, f.kind, f.count, f.seconds) == ("2207", "latency", 3, 2.5)


def test_sim_fault_commit_then_drop_loses_the_answer_on_every_counted_try(fc: Client):
    control(fc, infno="2207", kind="commit_then_drop", count=3)
    v, body, start, s6 = ready_2207(fc)
    for _ in range(3):
        with pytest.raises(httpx.TransportError):
            fc.post(body)
    out = wire.loads(fc.post(body).content)
    assert out["infcode"] == 0 and balc(fc, v) == start - s6["acct_pay"]  # settled once


def test_sim_fault_drop_before_commit_of_a_refusal_remembers_nothing(fsim, fc: Client):
    import sqlite3
    control(fc, infno="1101", kind="drop_before_commit", count=1)
    q = q1101()
    q["data"]["psn_name"] = "不是本人"
    body = fc.body("1101", q)
    with pytest.raises(httpx.TransportError):
        fc.post(body)
    db = sqlite3.connect(fsim.db_url.removeprefix("sqlite:///"))
    msgid = wire.loads(body)["msgid"]
    assert db.execute("SELECT count(*) FROM message_log WHERE msgid=?", (msgid,)).fetchone() == (0,)
    assert wire.loads(fc.post(body).content)["infcode"] == -1
    assert db.execute("SELECT count(*) FROM message_log WHERE msgid=?", (msgid,)).fetchone() == (1,)
    db.close()
