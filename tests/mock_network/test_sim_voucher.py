"""The simulator's voucher hub: QR payload -> ecToken, lifetimes, forgery, 1101 type 01.

In-process app with a settable clock (lifetimes without sleeping); the settlement client
``VoucherHubClient`` talks to it through Starlette's TestClient (an httpx.Client).  The
end-to-end path through real processes is tests/e2e/test_e2e_voucher.py."""
from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest
from starlette.testclient import TestClient

from settlement import gateway, wire
from settlement.mock_network.app import create_app
from settlement.mock_network.registry import build_registry, default_villager
from settlement.mock_network.voucher_hub import (
    DEFAULT_TOKEN_LIFETIME,
    TOKEN_LEN,
    VoucherRefusal,
    check_token,
    issue_token,
    qr_payload,
)
from settlement.voucher import (
    HUB_PATH,
    VoucherExpired,
    VoucherHubClient,
    VoucherNetworkError,
    VoucherRefused,
    VoucherUnknown,
)

from .conftest import Client

T0 = datetime(2026, 11, 30, 9, 0, 0)   # naive Beijing, as the simulator's clock


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now


@pytest.fixture(scope="module")
def app_and_clock(tmp_path_factory):
    clock = Clock()
    app = create_app(f"sqlite:///{tmp_path_factory.mktemp('voucher') / 'sim.db'}", clock=clock)
    http = TestClient(app, base_url="http://sim")
    yield http, clock
    http.close()


@pytest.fixture
def hub(app_and_clock):
    http, clock = app_and_clock
    clock.now = T0
    return http, clock


def client_for(http: TestClient) -> VoucherHubClient:
    c = VoucherHubClient("http://sim")
    c._http = http          # the TestClient is an httpx.Client on the in-process app
    return c


def call_1101(http: TestClient, token: str) -> dict:
    c = Client("http://sim")
    c.http = http                 # the conftest's signed client, on the in-process app
    c.sign_in()
    return c.call("1101", {"data": {"mdtrt_cert_type": "01", "mdtrt_cert_no": token,
                                    "card_sn": "", "begntime": "", "psn_cert_type": "01",
                                    "certno": "", "psn_name": ""}})


def test_hub_turns_a_villagers_qr_into_identity_and_a_40_char_token(hub):
    http, _ = hub
    v = build_registry()[42]
    ident = client_for(http).query(qr_payload(v, T0))
    assert (ident.id_no, ident.user_name, ident.id_type) == (v.certno, v.psn_name, "01")
    assert len(ident.ec_token) == TOKEN_LEN
    assert v.certno not in repr(ident) and v.psn_name not in repr(ident)


def test_token_is_accepted_by_1101_within_its_lifetime_and_refused_after(hub):
    http, clock = hub
    v = default_villager()
    token = client_for(http).query(qr_payload(v, T0)).ec_token
    clock.now = T0 + timedelta(seconds=DEFAULT_TOKEN_LIFETIME - 1)
    assert call_1101(http, token)["output"]["baseinfo"]["psn_no"] == v.psn_no
    clock.now = T0 + timedelta(seconds=DEFAULT_TOKEN_LIFETIME)
    out = call_1101(http, token)
    assert out["infcode"] == -1 and out["err_msg"].startswith("医保电子凭证已过期")


def test_a_token_with_one_character_changed_is_unknown_to_1101(hub):
    http, _ = hub
    token = client_for(http).query(qr_payload(default_villager(), T0)).ec_token
    for i in (0, 10, 39):   # expiry, person, MAC
        forged = token[:i] + ("0" if token[i] != "0" else "1") + token[i + 1:]
        out = call_1101(http, forged)
        assert out["infcode"] == -1 and out["err_msg"].startswith("医保电子凭证无效"), i


def test_qr_older_than_a_day_is_expired_and_a_forged_qr_unknown(hub):
    http, _ = hub
    c = client_for(http)
    with pytest.raises(VoucherExpired) as e:
        c.query(qr_payload(default_villager(), T0 - timedelta(days=1, seconds=1)))
    assert "二维码已过期" in e.value.message
    qr = qr_payload(default_villager(), T0)
    with pytest.raises(VoucherUnknown) as e:
        c.query(qr[:20] + ("A" if qr[20] != "A" else "B") + qr[21:])
    assert "无法识别" in e.value.message
    with pytest.raises(VoucherUnknown):
        c.query("https://example.com/not-a-voucher")


def test_qr_typed_with_caps_lock_on_still_decodes(hub):
    http, _ = hub
    v = default_villager()
    assert client_for(http).query(qr_payload(v, T0).lower()).id_no == v.certno


def test_hub_refuses_requests_without_a_valid_gateway_signature(hub):
    http, _ = hub
    c = VoucherHubClient("http://sim", paas_token="wrong-token")
    c._http = http
    with pytest.raises(VoucherRefused) as e:
        c.query(qr_payload(default_villager(), T0))
    assert "网关" in e.value.message


def test_malformed_hub_request_is_a_400_with_a_chinese_message(hub):
    http, _ = hub
    r = http.post(HUB_PATH, content=b'{"data": {}}',
                  headers=gateway.sign_headers(gateway.DEFAULT_PAAS_ID, gateway.DEFAULT_PAAS_TOKEN))
    assert r.status_code == 400 and "qrCode" in r.json()["message"]


def test_unreachable_hub_is_a_network_error():
    c = VoucherHubClient("http://127.0.0.1:9", timeout=1.0)
    with pytest.raises(VoucherNetworkError) as e:
        c.query("YBEC1" + "0" * 38)
    assert "连不上" in e.value.message


def test_check_token_reads_back_the_person_and_refuses_garbage():
    token = issue_token("3101160000000042", T0, 60)
    assert check_token(token, T0) == "3101160000000042"
    for bad in ("", "Z" * 40, token[:-1], token + "0"):
        with pytest.raises(VoucherRefusal) as e:
            check_token(bad, T0)
        assert e.value.reason == "unknown"


def test_client_rejects_an_answer_with_a_bad_id_number():
    def handler(request):
        return httpx.Response(200, content=wire.dumps({"code": 0, "data": {
            "idNo": "110105194912310021", "userName": "某", "ecToken": "A" * 40}}))
    c = VoucherHubClient("http://hub", transport=httpx.MockTransport(handler))
    from settlement.voucher import VoucherAnswerError
    with pytest.raises(VoucherAnswerError):
        c.query("YBEC1" + "0" * 38)
