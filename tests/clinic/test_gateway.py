import pytest

from settlement import gateway


def _check(headers, now, seen=None):
    return gateway.check_headers(headers, {"p": "tok"}, now=now, seen_nonce=seen)


def test_signed_headers_verify_and_follow_the_published_formula():
    h = gateway.sign_headers("p", "tok", now=1_700_000_000)
    assert h["x-tif-signature"] == gateway.signature("1700000000", "tok", h["x-tif-nonce"])
    assert _check(h, 1_700_000_000) == "p"


@pytest.mark.parametrize("mutate,code", [
    (lambda h: h.update({"x-tif-signature": "0" * 64}), "bad_signature"),
    (lambda h: h.update({"x-tif-paasid": "other"}), "unknown_paasid"),
    (lambda h: h.pop("x-tif-nonce"), "missing"),
])
def test_gateway_refuses_bad_headers_distinctly(mutate, code):
    h = gateway.sign_headers("p", "tok", now=1_700_000_000)
    mutate(h)
    with pytest.raises(gateway.GatewayRefusal) as err:
        _check(h, 1_700_000_000)
    assert err.value.code == code


def test_gateway_refuses_stale_timestamp_and_reused_nonce():
    h = gateway.sign_headers("p", "tok", now=1_700_000_000)
    with pytest.raises(gateway.GatewayRefusal) as err:
        _check(h, 1_700_000_000 + 301)
    assert err.value.code == "stale_timestamp"
    seen = set()

    def once(paas, nonce):
        hit = (paas, nonce) in seen
        seen.add((paas, nonce))
        return hit
    _check(h, 1_700_000_000, once)
    with pytest.raises(gateway.GatewayRefusal) as err:
        _check(h, 1_700_000_000, once)
    assert err.value.code == "nonce_reused"
