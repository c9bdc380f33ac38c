"""The simulator as a real process: the outpatient flow, refusals, gateway, idempotency."""
from __future__ import annotations

import re
import time
from decimal import Decimal

import pytest

from settlement import gateway, wire
from settlement.mock_network.registry import (
    REFERENCE_DATE,
    build_registry,
    default_villager,
)

from .conftest import (
    Client,
    SimProcess,
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


def fresh(pred) -> object:
    """A villager no other test in this module has touched (their yearly totals are 0)."""
    for v in REG[1:]:
        if v.psn_no not in _used and v.insu_state == "1" and v.card_expiry_date > REFERENCE_DATE \
                and pred(v):
            _used.add(v.psn_no)
            return v
    raise LookupError("no villager left")


def identities(s: dict) -> None:
    assert s["medfee_sumamt"] == s["fulamt_ownpay_amt"] + s["overlmt_selfpay"] + s["preselfpay_amt"] + s["inscp_scp_amt"]
    assert s["medfee_sumamt"] == s["fund_pay_sumamt"] + s["psn_part_amt"] + s["hosp_part_amt"]
    assert s["psn_part_amt"] == s["acct_pay"] + s["psn_cash_pay"]


def test_sim_full_outpatient_flow_settles_an_elderly_resident(client: Client):
    v = fresh(lambda v: v.insutype == "390" and v.age() >= 61)
    psn, mid, total = new_visit(client, v)
    assert total == Decimal("83.30")
    pre = q2206(psn, mid, "390", total)
    s6 = client.ok("2206", pre)["setlinfo"]
    assert s6["setl_id"] is None and s6["setl_time"] is None
    identities(s6)
    body = client.body("2207", q2207(pre, s6))
    out = wire.loads(client.post(body).content)
    assert out["infcode"] == 0, out["err_msg"]
    s7 = out["output"]["setlinfo"]
    identities(s7)
    assert s7["medins_setl_id"] == wire.loads(body)["msgid"]
    assert s7["setl_id"] and s7["setl_time"]
    # 2 × 32.40 甲 + 8.50 乙 over its 8.00 ceiling + 10.00 consultation, deductible not yet met:
    # the fund pays only the consultation subsidy 9.00.
    assert (s7["medfee_sumamt"], s7["overlmt_selfpay"], s7["preselfpay_amt"], s7["inscp_scp_amt"],
            s7["act_pay_dedc"], s7["hifp_pay"], s7["psn_cash_pay"]) == tuple(map(Decimal, (
                "83.30", "0.50", "0.80", "82.00", "72.00", "9.00", "74.30")))
    assert s7["psn_no"] == psn and s7["insutype"] == "390"
    assert out["output"]["setldetail"][0]["fund_pay_type"] == "390100"
    assert out["output"]["setldetail"][0]["fund_payamt"] == Decimal("9.00")
    assert {k: s6[k] for k in s6 if k not in ("setl_id", "setl_time", "medins_setl_id")} == \
        {k: s7[k] for k in s7 if k not in ("setl_id", "setl_time", "medins_setl_id")}


def test_sim_response_envelope_has_exactly_the_platform_fields(client: Client):
    r = client.post(client.body("1101", q1101()))
    assert r.headers["content-type"].startswith("application/json")
    out = wire.loads(r.content)
    assert list(out) == ["infcode", "inf_refmsgid", "refmsg_time", "respond_time", "err_msg",
                         "warn_msg", "output"]
    assert re.fullmatch(r"310116\d{24}", out["inf_refmsgid"])
    assert re.fullmatch(r"\d{17}", out["respond_time"]) and re.fullmatch(r"\d{17}", out["refmsg_time"])
    base = out["output"]["baseinfo"]
    v = default_villager()
    assert (base["psn_no"], base["certno"], base["gend"], base["age"]) == (v.psn_no, v.certno, "2", v.age(time_today()))
    assert out["output"]["insuinfo"][0]["insutype"] == "390"
    assert out["output"]["insuinfo"][0]["balc"] == Decimal("0.00")


def time_today():
    from datetime import datetime, timedelta, timezone
    return datetime.now(timezone(timedelta(hours=8))).date()


def test_sim_1101_by_id_number_and_provincial_infno_letter(client: Client):
    v = default_villager()
    out = client.ok("1101A", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": v.certno,
                                       "card_sn": "", "begntime": "", "psn_cert_type": "01",
                                       "certno": v.certno, "psn_name": ""}})
    assert out["baseinfo"]["psn_no"] == v.psn_no


@pytest.mark.parametrize("change, words", [
    ({"mdtrt_cert_no": "S00000001"}, "未查询到"),
    ({"card_sn": "0" * 32}, "卡识别码"),
    ({"psn_name": "张三"}, "姓名"),
    ({"mdtrt_cert_type": "09"}, "凭证类型"),
])
def test_sim_1101_refuses_wrong_card_data_in_chinese(client: Client, change, words):
    q = q1101()
    q["data"].update(change)
    out = client.call("1101", q)
    assert out["infcode"] == -1 and words in out["err_msg"] and out["output"] is None


def test_sim_1101_refuses_an_expired_card(client: Client):
    v = next(v for v in REG if v.card_expiry_date < REFERENCE_DATE)
    out = client.call("1101", q1101(v))
    assert out["infcode"] == -1 and "过期" in out["err_msg"]


def test_sim_2201_refuses_suspended_insurance(client: Client):
    v = next(v for v in REG if v.insu_state == "2" and v.card_expiry_date > REFERENCE_DATE)
    base = client.ok("1101", q1101(v))
    assert base["insuinfo"][0]["psn_insu_stas"] == "2"
    out = client.call("2201", q2201(v.psn_no, v.insutype, f"MZS{time.time_ns()}"))
    assert out["infcode"] == -1 and "暂停参保" in out["err_msg"]


def test_sim_2201_requires_insuplc_admdvs_with_psn_no(client: Client):
    v = default_villager()
    out = client.call("2201", q2201(v.psn_no, "390", f"MZI{time.time_ns()}"), insuplc="")
    assert out["infcode"] == -1 and "insuplc_admdvs" in out["err_msg"]


def test_sim_2204_refuses_amount_not_cnt_times_price_and_duplicate_sn(client: Client):
    v = fresh(lambda v: v.insutype == "390")
    psn, mid, _ = new_visit(client, v, [("1", "XB01ACA056A012030101554", "1", "15.60")])
    bad = client.call("2204", {"feedetail": [fee(mid, psn, "2", "XB01ACA056A012030101554", "2", "15.60", "31.00")]})
    assert bad["infcode"] == -1 and "数量×单价" in bad["err_msg"]
    dup = client.call("2204", {"feedetail": [fee(mid, psn, "1", "XB01ACA056A012030101554", "1", "15.60")]})
    assert dup["infcode"] == -1 and "已存在" in dup["err_msg"]


def test_sim_2204_lines_are_classified_from_the_catalogue(client: Client):
    v = fresh(lambda v: v.insutype == "390")
    base = client.ok("1101", q1101(v))["baseinfo"]
    mid = client.ok("2201", q2201(v.psn_no, "390", f"MZC{time.time_ns()}"))["data"]["mdtrt_id"]
    client.ok("2203", q2203(mid, v.psn_no))
    res = client.ok("2204", {"feedetail": [
        fee(mid, base["psn_no"], "1", "XJ01CAA040A001010405611", "2", "8.50"),
        fee(mid, base["psn_no"], "2", "ZA09AAB001B001010100001", "1", "48.00"),
        fee(mid, base["psn_no"], "3", "NOT-IN-CATALOGUE", "1.5", "2.333333"),
    ]})["result"]
    amox, cls3, unknown = res
    assert (amox["chrgitm_lv"], amox["overlmt_amt"], amox["preselfpay_amt"], amox["inscp_scp_amt"],
            amox["pric_uplmt_amt"], amox["selfpay_prop"]) == ("02", Decimal("1.00"), Decimal("1.60"),
                                                              Decimal("14.40"), Decimal("8.00"), Decimal("0.10"))
    assert (cls3["chrgitm_lv"], cls3["fulamt_ownpay_amt"], cls3["med_chrgitm_type"]) == ("03", Decimal("48.00"), "11")
    assert (unknown["fulamt_ownpay_amt"], unknown["det_item_fee_sumamt"]) == (Decimal("3.50"), Decimal("3.50"))


def test_sim_2207_refuses_total_not_matching_uploaded_lines(client: Client):
    v = fresh(lambda v: v.insutype == "390")
    psn, mid, total = new_visit(client, v)
    pre = q2206(psn, mid, "390", total)
    s = client.ok("2206", pre)["setlinfo"]
    wrong = q2207(pre, s)
    wrong["data"]["medfee_sumamt"] = total + Decimal("1.00")
    out = client.call("2207", wrong)
    assert out["infcode"] == -1 and "不符" in out["err_msg"]
    ok = client.ok("2207", q2207(pre, s))
    identities(ok["setlinfo"])


def test_sim_2207_a_visit_is_settled_only_once(client: Client):
    v = fresh(lambda v: v.insutype == "390")
    psn, mid, total = new_visit(client, v)
    first = settle_visit(client, psn, mid, "390", total)["setlinfo"]
    pre = q2206(psn, mid, "390", total)
    again = client.call("2207", q2207(pre, first))
    assert again["infcode"] == -1 and "不能重复结算" in again["err_msg"]
    assert first["setl_id"] in again["err_msg"]


def test_sim_employee_account_pays_first_and_balance_is_kept(client: Client):
    v = fresh(lambda v: v.insutype == "310" and 0 < v.balc_fen < 30000)
    psn, mid, total = new_visit(client, v)
    s = settle_visit(client, psn, mid, "310", total)["setlinfo"]
    identities(s)
    assert s["acct_pay"] == min(Decimal(v.balc_fen) / 100, s["psn_part_amt"])
    assert s["balc"] == Decimal(v.balc_fen) / 100 - s["acct_pay"] >= 0
    after = client.ok("1101", q1101(v))["insuinfo"][0]["balc"]
    assert after == s["balc"]


def test_sim_missing_or_unknown_sign_no_is_refused(client: Client):
    for sign in ("", "310116209901013999999999"):
        out = client.call("1101", q1101(), sign_no=sign)
        assert out["infcode"] == -1 and "签到" in out["err_msg"]


def test_sim_malformed_body_and_bad_msgid_are_refused(client: Client):
    r = client.post(b'{"infno": "1101", "msgid": ')
    out = wire.loads(r.content)
    assert (r.status_code, out["infcode"]) == (200, -1) and "JSON" in out["err_msg"]
    out = client.call("1101", q1101(), msgid="H31011600001-bad")
    assert out["infcode"] == -1 and "msgid" in out["err_msg"]
    out = client.call("1101", q1101(), msgid="H31011600002" + client.msgid()[12:])
    assert out["infcode"] == -1 and "fixmedins_code" in out["err_msg"]


def test_sim_unknown_infno_is_refused(client: Client):
    out = client.call("5555", {"data": {}})
    assert out["infcode"] == -1 and "不支持" in out["err_msg"]


# ---- gateway --------------------------------------------------------------------------

def _headers(ts: float | None = None, token: str = gateway.DEFAULT_PAAS_TOKEN) -> dict:
    return gateway.sign_headers(gateway.DEFAULT_PAAS_ID, token, now=ts)


@pytest.mark.parametrize("headers, code, msg", [
    (lambda: {**_headers(), "x-tif-signature": "0" * 64}, "bad_signature", "网关签名错误"),
    (lambda: _headers(token="wrong"), "bad_signature", "网关签名错误"),
    (lambda: _headers(ts=time.time() - 3600), "stale_timestamp", "网关时间戳超出允许范围"),
    (lambda: {k: v for k, v in _headers().items() if k != "x-tif-nonce"}, "missing", "网关认证头缺失"),
    (lambda: {**_headers(), "x-tif-paasid": "someone-else"}, "unknown_paasid", "未知的接入系统"),
])
def test_sim_gateway_refusals_are_401_and_distinct(client: Client, headers, code, msg):
    r = client.post(client.body("1101", q1101()), headers=headers())
    assert r.status_code == 401
    assert r.headers["x-tif-refusal"] == code
    out = wire.loads(r.content)
    assert (out["infcode"], out["err_msg"], out["output"]) == (-1, msg, None)


def test_sim_gateway_refuses_a_reused_nonce(client: Client):
    h = _headers()
    assert client.post(client.body("1101", q1101()), headers=h).status_code == 200
    r = client.post(client.body("1101", q1101()), headers=h)
    assert r.status_code == 401 and r.headers["x-tif-refusal"] == "nonce_reused"
    assert wire.loads(r.content)["err_msg"] == "网关随机数重复使用"


# ---- idempotency ------------------------------------------------------------------------

def test_sim_repeated_msgid_gets_the_first_answer_byte_for_byte(client: Client):
    v = fresh(lambda v: v.insutype == "310" and v.balc_fen > 20000)
    psn, mid, total = new_visit(client, v)
    pre = q2206(psn, mid, "310", total)
    s = client.ok("2206", pre)["setlinfo"]
    body = client.body("2207", q2207(pre, s))
    first = client.post(body)
    time.sleep(0.01)
    second = client.post(body)  # fresh signature and nonce, same body
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert wire.loads(first.content)["infcode"] == 0
    # no second debit
    balc = client.ok("1101", q1101(v))["insuinfo"][0]["balc"]
    assert balc == wire.loads(first.content)["output"]["setlinfo"]["balc"]


def test_sim_repeated_msgid_with_different_body_is_refused(client: Client):
    body = client.body("1101", q1101())
    msgid = wire.loads(body)["msgid"]
    assert wire.loads(client.post(body).content)["infcode"] == 0
    other = client.body("1101", q1101(REG[3]), msgid=msgid)
    out = wire.loads(client.post(other).content)
    assert out["infcode"] == -1 and out["err_msg"] == "报文ID重复但内容不同"
    assert client.post(body).content != b""  # the original is still answered


def test_sim_a_refusal_is_also_the_first_answer(client: Client):
    q = q1101()
    q["data"]["mdtrt_cert_no"] = "S00000001"
    body = client.body("1101", q)
    a, b = client.post(body), client.post(body)
    assert a.content == b.content and wire.loads(a.content)["infcode"] == -1


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_sim_idempotency_and_nonces_survive_a_restart(tmp_path, backend, request):
    url = (f"sqlite:///{tmp_path / 'restart.db'}" if backend == "sqlite"
           else request.getfixturevalue("pg_url"))
    sim = SimProcess(url).start()
    try:
        c = Client(sim.url)
        c.sign_in()
        v = default_villager()
        psn, mid, total = new_visit(c, v)
        pre = q2206(psn, mid, "390", total)
        s = c.ok("2206", pre)["setlinfo"]
        body = c.body("2207", q2207(pre, s))
        h = _headers()
        first = c.post(body, headers=h)
        assert wire.loads(first.content)["infcode"] == 0
        c.close()
    finally:
        assert sim.stop() == 0  # SIGTERM is a clean exit
    sim = SimProcess(sim.db_url).start()
    try:
        c = Client(sim.url)
        assert c.post(body).content == first.content
        r = c.post(body, headers=h)
        assert r.status_code == 401 and r.headers["x-tif-refusal"] == "nonce_reused"
        env = wire.loads(body)
        env["input"]["data"]["invono"] = "FP9999"
        out = wire.loads(c.post(wire.dumps(env)).content)
        assert out["err_msg"] == "报文ID重复但内容不同"
        c.close()
    finally:
        sim.stop()


def test_sim_1101_by_electronic_voucher_token_from_the_hub(client: Client):
    # The token comes from the voucher hub (voucher_hub.py) for a scanned QR code.
    from settlement.mock_network.voucher_hub import qr_payload
    from settlement.voucher import HUB_PATH
    v = default_villager()
    hub = client.http.post(HUB_PATH, content=wire.dumps({"transType": "ec.query", "data": {
        "qrCode": qr_payload(v), "businessType": "01101"}}),
        headers={**gateway.sign_headers(gateway.DEFAULT_PAAS_ID, gateway.DEFAULT_PAAS_TOKEN),
                 "content-type": "application/json"})
    token = wire.loads(hub.content)["data"]["ecToken"]
    q = {"data": {"mdtrt_cert_type": "01", "mdtrt_cert_no": token,
                  "card_sn": "", "begntime": "", "psn_cert_type": "01", "certno": "", "psn_name": ""}}
    assert client.ok("1101", q)["baseinfo"]["psn_no"] == v.psn_no
    q["data"]["mdtrt_cert_no"] = "F" * 40  # not issued by this simulator
    out = client.call("1101", q)
    assert out["infcode"] == -1 and "电子凭证" in out["err_msg"]
