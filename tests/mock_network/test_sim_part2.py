"""Sign-out, cancel registration, delete lines, revoke, reversal, reconciliation."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from settlement import wire
from settlement.mock_network.registry import REFERENCE_DATE, build_registry

from .conftest import (
    Client,
    fee,
    new_visit,
    q1101,
    q2201,
    q2203,
    q2206,
    q2207,
    settle_visit,
)

REG = build_registry()
_used: set[str] = set()
AMOUNT_KEYS = ("medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt",
               "inscp_scp_amt", "act_pay_dedc", "hifp_pay", "fund_pay_sumamt", "psn_part_amt",
               "acct_pay", "psn_cash_pay", "hosp_part_amt")


def fresh(pred):
    # Take villagers from the end of the registry: test_sim_protocol takes from the front.
    for v in reversed(REG):
        if v.psn_no not in _used and v.insu_state == "1" and v.card_expiry_date > REFERENCE_DATE \
                and pred(v):
            _used.add(v.psn_no)
            return v
    raise LookupError("no villager left")


def employee():
    return fresh(lambda v: v.insutype == "310" and v.balc_fen > 30000)


def balance(c: Client, v) -> Decimal:
    return c.ok("1101", q1101(v))["insuinfo"][0]["balc"]


def today() -> str:
    return datetime.now(timezone(timedelta(hours=8))).strftime("%Y-%m-%d")


# ---- 9002 / 2202 / 2205 ---------------------------------------------------------------

def test_sim_9002_sign_out_ends_the_sign_no(client: Client):
    sign = client.sign_no
    out = client.ok("9002", {"signOut": {"opter_no": "001", "sign_no": sign}})
    assert len(out["signoutoutb"]["sign_time"]) == 19
    refused = client.call("1101", q1101())
    assert refused["infcode"] == -1 and "签退" in refused["err_msg"]
    client.sign_in()
    again = client.call("9002", {"signOut": {"opter_no": "001", "sign_no": sign}})
    assert again["infcode"] == -1 and "已于" in again["err_msg"]


def test_sim_2202_cancelled_registration_takes_no_more_data(client: Client):
    v = fresh(lambda v: v.insutype == "390")
    otp = f"MZX{time.time_ns()}"
    mid = client.ok("2201", q2201(v.psn_no, "390", otp))["data"]["mdtrt_id"]
    assert client.ok("2202", {"data": {"mdtrt_id": mid, "psn_no": v.psn_no, "ipt_otp_no": otp}}) is None
    out = client.call("2203", q2203(mid, v.psn_no))
    assert out["infcode"] == -1 and "已撤销" in out["err_msg"]


def test_sim_2205_deletes_unsettled_lines_by_batch_or_all(client: Client):
    v = fresh(lambda v: v.insutype == "390")
    psn, mid, total = new_visit(client, v)
    client.ok("2204", {"feedetail": [fee(mid, psn, "9", "XB01ACA056A012030101554", "1", "15.60", bch="B2")]})
    client.ok("2205", {"data": {"mdtrt_id": mid, "chrg_bchno": "B2", "psn_no": psn}})
    s = client.ok("2206", q2206(psn, mid, "390", total))["setlinfo"]  # B2 is gone
    assert s["medfee_sumamt"] == total
    client.ok("2205", {"data": {"mdtrt_id": mid, "chrg_bchno": "0000", "psn_no": psn}})
    out = client.call("2206", q2206(psn, mid, "390", total))
    assert out["infcode"] == -1 and "2204" in out["err_msg"]
    nothing = client.call("2205", {"data": {"mdtrt_id": mid, "chrg_bchno": "0000", "psn_no": psn}})
    assert nothing["infcode"] == -1
    client.ok("2204", {"feedetail": [fee(mid, psn, "1", "XB01ACA056A012030101554", "1", "15.60")]})


# ---- 2208 -------------------------------------------------------------------------------

def test_sim_2208_revoke_negates_restores_and_is_refused_twice(client: Client):
    v = employee()
    before = balance(client, v)
    psn, mid, total = new_visit(client, v)
    s = settle_visit(client, psn, mid, "310", total)["setlinfo"]
    assert balance(client, v) == before - s["acct_pay"]
    q = {"data": {"setl_id": s["setl_id"], "mdtrt_id": mid, "psn_no": psn}}
    body = client.body("2208", q)
    r = client.ok("2208", q, msgid=wire.loads(body)["msgid"])["setlinfo"]
    assert r["setl_id"] != s["setl_id"] and r["medins_setl_id"] == wire.loads(body)["msgid"]
    assert all(r[k] == -s[k] for k in AMOUNT_KEYS)
    assert r["balc"] == before == balance(client, v)
    again = client.call("2208", q)
    assert again["infcode"] == -1 and "不能重复撤销" in again["err_msg"] and r["setl_id"] in again["err_msg"]
    # yearly totals were restored: settling the same visit again gives the same split
    s2 = settle_visit(client, psn, mid, "310", total)["setlinfo"]
    assert all(s2[k] == s[k] for k in AMOUNT_KEYS) and s2["setl_id"] not in (s["setl_id"], r["setl_id"])


# ---- 2601 -------------------------------------------------------------------------------

def test_sim_2601_reverses_a_settlement_and_blocks_its_revocation(client: Client):
    v = employee()
    before = balance(client, v)
    psn, mid, total = new_visit(client, v)
    pre = q2206(psn, mid, "310", total)
    s6 = client.ok("2206", pre)["setlinfo"]
    body = client.body("2207", q2207(pre, s6))
    s = wire.loads(client.post(body).content)["output"]["setlinfo"]
    assert balance(client, v) == before - s["acct_pay"]
    omsgid = wire.loads(body)["msgid"]
    assert client.ok("2601", {"data": {"psn_no": psn, "omsgid": omsgid, "oinfno": "2207"}}) is None
    assert balance(client, v) == before
    refused = client.call("2208", {"data": {"setl_id": s["setl_id"], "mdtrt_id": mid, "psn_no": psn}})
    assert refused["infcode"] == -1 and "冲正" in refused["err_msg"]
    # reversing twice is harmless
    assert client.ok("2601", {"data": {"psn_no": psn, "omsgid": omsgid, "oinfno": "2207"}}) is None
    assert balance(client, v) == before


def test_sim_2601_refused_when_the_settlement_was_revoked(client: Client):
    v = fresh(lambda v: v.insutype == "390")
    psn, mid, total = new_visit(client, v)
    pre = q2206(psn, mid, "390", total)
    body = client.body("2207", q2207(pre, client.ok("2206", pre)["setlinfo"]))
    s = wire.loads(client.post(body).content)["output"]["setlinfo"]
    client.ok("2208", {"data": {"setl_id": s["setl_id"], "mdtrt_id": mid, "psn_no": psn}})
    out = client.call("2601", {"data": {"psn_no": psn, "omsgid": wire.loads(body)["msgid"], "oinfno": "2207"}})
    assert out["infcode"] == -1 and "已撤销" in out["err_msg"]


def test_sim_2601_of_an_unseen_message_succeeds_and_the_late_original_is_refused(client: Client):
    v = fresh(lambda v: v.insutype == "390")
    late = client.body("2201", q2201(v.psn_no, "390", f"MZL{time.time_ns()}"))
    omsgid = wire.loads(late)["msgid"]
    assert client.ok("2601", {"data": {"psn_no": v.psn_no, "omsgid": omsgid, "oinfno": "2201"}}) is None
    out = wire.loads(client.post(late).content)
    assert out["infcode"] == -1 and "冲正" in out["err_msg"]


def test_sim_2601_checks_the_original_infno(client: Client):
    body = client.body("1101", q1101())
    client.post(body)
    out = client.call("2601", {"data": {"psn_no": "", "omsgid": wire.loads(body)["msgid"], "oinfno": "2207"}})
    assert out["infcode"] == -1 and "不符" in out["err_msg"]


def test_sim_2601_of_a_registration_cancels_the_visit(client: Client):
    v = fresh(lambda v: v.insutype == "390")
    body = client.body("2201", q2201(v.psn_no, "390", f"MZR{time.time_ns()}"))
    mid = wire.loads(client.post(body).content)["output"]["data"]["mdtrt_id"]
    client.ok("2601", {"data": {"psn_no": v.psn_no, "omsgid": wire.loads(body)["msgid"], "oinfno": "2201"}})
    out = client.call("2203", q2203(mid, v.psn_no))
    assert out["infcode"] == -1 and "已撤销" in out["err_msg"]


# ---- 3201 -------------------------------------------------------------------------------

def test_sim_3201_balanced_and_unbalanced(sim):
    c = Client(sim.url, wire.Institution("H31011600003", "枫泾镇五一村卫生室"))  # its own books
    c.sign_in()
    settled = []
    for _ in range(2):
        v = employee()
        psn, mid, total = new_visit(c, v)
        settled.append((psn, mid, settle_visit(c, psn, mid, "310", total)["setlinfo"]))
    psn, mid, s = settled[1]
    c.ok("2208", {"data": {"setl_id": s["setl_id"], "mdtrt_id": mid, "psn_no": psn}})
    first = settled[0][2]

    def q(med, fund, acct, cnt, refd="0"):
        return {"data": {"insutype": "310", "clr_type": "11", "setl_optins": "310116",
                         "stmt_begndate": today(), "stmt_enddate": today(), "medfee_sumamt": med,
                         "fund_pay_sumamt": fund, "acct_pay": acct, "fixmedins_setl_cnt": cnt,
                         "refd_setl_flag": refd}}
    ok = c.ok("3201", q(first["medfee_sumamt"], first["fund_pay_sumamt"], first["acct_pay"], 1))
    assert ok["stmtinfo"] == {"setl_optins": "310116", "stmt_rslt": "0", "stmt_rslt_dscr": "平"}
    with_refunds = c.ok("3201", q(first["medfee_sumamt"], first["fund_pay_sumamt"], first["acct_pay"], 3, "1"))
    assert with_refunds["stmtinfo"]["stmt_rslt"] == "0"
    off = c.ok("3201", q(first["medfee_sumamt"] + Decimal("0.01"), first["fund_pay_sumamt"], first["acct_pay"], 1))
    assert off["stmtinfo"]["stmt_rslt"] == "1" and "医疗费总额" in off["stmtinfo"]["stmt_rslt_dscr"]
    c.close()


# ---- 9101 / 3202 / 9102 -------------------------------------------------------------------

def _zip(name: str, text: str) -> bytes:
    import io
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(name, text)
    return buf.getvalue()


def test_sim_3202_detail_reconciliation_through_file_exchange(sim):
    import base64
    import io
    import zipfile
    c = Client(sim.url, wire.Institution("H31011600004", "枫泾镇贵泾村卫生室"))
    c.sign_in()
    done = []
    for _ in range(3):
        v = fresh(lambda v: v.insutype == "390")
        psn, mid, total = new_visit(c, v)
        pre = q2206(psn, mid, "390", total)
        body = c.body("2207", q2207(pre, c.ok("2206", pre)["setlinfo"]))
        s = wire.loads(c.post(body).content)["output"]["setlinfo"]
        done.append((psn, mid, s, wire.loads(body)["msgid"]))
    psn_b, mid_b, s_b, _ = done[1]
    c.ok("2208", {"data": {"setl_id": s_b["setl_id"], "mdtrt_id": mid_b, "psn_no": psn_b}})

    def row(psn, mid, s, msgid, refd="0", med=None):
        return "\t".join([s["setl_id"], mid, psn, msgid, str(med or s["medfee_sumamt"]),
                          str(s["fund_pay_sumamt"]), str(s["acct_pay"]), refd])
    lines = [row(*done[0]), row(*done[1], refd="1"),
             "310116209901012999999999\tM1\tP1\tH31011600004209901010000000001\t1.00\t0.00\t0.00\t0"]
    # (done[2] is missing from the clinic's file; the third line is unknown to the insurer)
    up = c.ok("9101", {"fsUploadIn": {"in": base64.b64encode(_zip("detail.txt", "\n".join(lines) + "\n")).decode(),
                                      "filename": "detail.zip", "fixmedins_code": "H31011600004"}})
    info = c.ok("3202", {"data": {"setl_optins": "310116", "file_qury_no": up["file_qury_no"],
                                  "stmt_begndate": today(), "stmt_enddate": today(),
                                  "medfee_sumamt": Decimal(0), "fund_pay_sumamt": Decimal(0),
                                  "cash_payamt": Decimal(0), "fixmedins_setl_cnt": 3}})["fileinfo"]
    r = c.post(c.body("9102", {"fsDownloadIn": {"file_qury_no": info["file_qury_no"],
                                                "filename": info["filename"],
                                                "fixmedins_code": "H31011600004"}}))
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        result = [l.split("\t") for l in z.read("result.txt").decode().splitlines()]
    by_setl = {l[2]: l for l in result}
    assert by_setl[done[0][2]["setl_id"]][4] == "0"
    assert by_setl[s_b["setl_id"]][4:6] == ["0", "1"]
    assert by_setl["310116209901012999999999"][4:7] == ["1", "0", "中心无此结算"]
    assert by_setl[done[2][2]["setl_id"]][4:7] == ["1", "0", "机构无此结算"]
    assert all(len(l) == 10 for l in result)
    bad = c.call("9102", {"fsDownloadIn": {"file_qury_no": "nope", "filename": "", "fixmedins_code": "H31011600004"}})
    assert bad["infcode"] == -1
    c.close()


def test_sim_9101_refuses_bad_base64_and_foreign_files(sim, client: Client):
    bad = client.call("9101", {"fsUploadIn": {"in": "%%%", "filename": "x.zip",
                                              "fixmedins_code": client.inst.fixmedins_code}})
    assert bad["infcode"] == -1 and "base64" in bad["err_msg"]
    other = client.call("9101", {"fsUploadIn": {"in": "UEs=", "filename": "x.zip",
                                                "fixmedins_code": "H31011699999"}})
    assert other["infcode"] == -1
