"""The visit's transactions in plain SQL (and, on PostgreSQL, pipeline mode): refusals that
come late — a value the database refuses shows only at a later statement or at COMMIT —
are answers like any other: nothing of their effect is kept, and a repeat gets the same bytes."""
from __future__ import annotations

import time

from mock_network.conftest import new_visit, q1101, q2201, q2206, q2207
from settlement import wire
from settlement.mock_network.registry import default_villager


def test_sim_value_too_long_is_a_stored_refusal_and_nothing_else(client, sim):
    v = default_villager()
    psn = client.ok("1101", q1101(v))["baseinfo"]["psn_no"]
    otp = f"MZLONG{time.time_ns()}"
    q = q2201(psn, v.insutype, otp, v.card_no)
    q["data"]["dr_name"] = "村" * 200  # the column holds 40
    body = client.body("2201", q)
    first = client.post(body)
    assert first.status_code == 200
    again = client.post(body)
    assert again.content == first.content  # byte for byte, refusal or not
    out = wire.loads(first.content)
    if sim.db_url.startswith("postgresql"):
        assert out["infcode"] == -1 and out["err_msg"] == "报文字段超长或数值超出范围"
        # Nothing of it was kept: the same outpatient number registers fine afterwards.
        assert client.ok("2201", q2201(psn, v.insutype, otp, v.card_no))["data"]["mdtrt_id"]
    else:  # SQLite does not check lengths
        assert out["infcode"] == 0


def test_sim_refused_settlement_is_replayed_and_a_new_message_settles(client):
    v = default_villager()
    psn, mid, total = new_visit(client, v)
    pre = q2206(psn, mid, v.insutype, total)
    s = client.ok("2206", pre)["setlinfo"]
    bad = q2207(pre, s)
    bad["data"]["inscp_scp_amt"] = s["inscp_scp_amt"] + 1
    body = client.body("2207", bad)
    first = client.post(body)
    assert wire.loads(first.content)["infcode"] == -1
    assert client.post(body).content == first.content
    done = client.ok("2207", q2207(pre, s))["setlinfo"]
    assert done["setl_id"] and done["medfee_sumamt"] == total
