from decimal import Decimal

import pytest

from settlement import wire
from settlement.money import AmountError, to_fen, to_wire, yuan


@pytest.mark.parametrize("value,fen", [(Decimal("4.52"), 452), ("4.52", 452), (3, 300),
                                       ("0.05", 5), (Decimal("-12.30"), -1230), ("1378.15", 137815)])
def test_wire_amounts_accept_numbers_and_strings_as_exact_fen(value, fen):
    assert to_fen(value) == fen


@pytest.mark.parametrize("bad", [1.5, "abc", "1.005", None, True, "NaN", "Infinity", "1e30"])
def test_wire_amounts_refuse_floats_extra_places_and_junk(bad):
    with pytest.raises(AmountError):
        to_fen(bad)


def test_fen_round_trips_through_the_wire_encoding():
    for fen in (0, 1, 99, 100, 452, 137815, -1230):
        body = wire.dumps({"amt": to_wire(fen)})
        assert to_fen(wire.loads(body)["amt"]) == fen
    assert wire.dumps({"amt": to_wire(452)}) == b'{"amt":4.52}'
    assert yuan(-5) == "-0.05" and yuan(137815) == "1378.15"


@pytest.mark.parametrize("body,why", [
    (b'{"a":1,"a":2}', "duplicate"),
    (b'{"a":NaN}', "non-finite"),
    (b'{"a":Infinity}', "non-finite"),
    (b'{"a":', "malformed"),
    (b"[" * 40 + b"]" * 40, "deeply"),
    (b"[" * 200_000 + b"]" * 200_000, "deeply"),     # deeper than Python's own parser goes
    (b'{"a":"' + b"x" * (4 * 1024 * 1024) + b'"}', "exceeds"),
    (b'{"a":"\xff"}', "malformed"),                  # not UTF-8
    (b"1" * 5000, "malformed"),                       # an integer too long to be an amount
])
def test_strict_json_refuses_what_the_platform_never_sends(body, why):
    with pytest.raises(wire.WireError, match=why):
        wire.loads(body)


def test_floats_are_never_encoded():
    with pytest.raises(wire.WireError):
        wire.dumps({"amt": 1.5})


def test_msgid_has_the_platform_shape():
    from datetime import datetime
    m = wire.make_msgid("H31011600001", datetime(2026, 11, 30, 9, 5, 7), 12)
    assert m == "H31011600001202611300905070012" and len(m) == 30
    assert wire.MSGID_RE.match(m)


def test_msgid_serial_never_wraps_silently():
    from datetime import datetime
    with pytest.raises(ValueError):
        wire.make_msgid("H31011600001", datetime(2026, 11, 30), 10000)
