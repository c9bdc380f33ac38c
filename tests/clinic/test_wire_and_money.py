import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

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


# ---- depth: wire.loads walks only a body with MAX_DEPTH or more bracket bytes -------------

def _deepest(x, d=1):
    """The depth of the deepest value (the top level is 1): the rule wire.loads enforces."""
    if isinstance(x, dict):
        return max((_deepest(v, d + 1) for v in x.values()), default=d)
    if isinstance(x, list):
        return max((_deepest(v, d + 1) for v in x), default=d)
    return d


_leaves = st.none() | st.integers(-99, 99) | st.text(alphabet="[]{}a\"\\", max_size=4)
_trees = st.recursive(_leaves, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(alphabet="[{a", max_size=3), inner, max_size=3),
                      max_leaves=12)


@st.composite
def _nested(draw):
    """A tree wrapped in enough lists and dicts to land around MAX_DEPTH."""
    value = draw(_trees)
    for wrap_in_list in draw(st.lists(st.booleans(), min_size=20, max_size=wire.MAX_DEPTH + 6)):
        value = [value] if wrap_in_list else {"k": value}
    return value


@given(st.one_of(_trees, _nested()))
def test_the_bracket_count_shortcut_and_the_walk_agree_on_depth(value):
    body = json.dumps(value, ensure_ascii=False).encode()
    too_deep = _deepest(value) > wire.MAX_DEPTH
    if not wire._may_be_too_deep(body):
        assert not too_deep  # what lets wire.loads skip the walk
    for limit in (1, 2, 3, wire.MAX_DEPTH - 1, wire.MAX_DEPTH, wire.MAX_DEPTH + 1):
        if _deepest(value) > limit:
            with pytest.raises(wire.WireError, match="deeply"):
                wire._depth(value, limit)
        else:
            wire._depth(value, limit)
    if too_deep:
        with pytest.raises(wire.WireError, match="deeply"):
            wire.loads(body)
    else:
        assert wire.loads(body) == value


@pytest.mark.parametrize("n,ok", [(wire.MAX_DEPTH - 1, True), (wire.MAX_DEPTH, False)])
def test_depth_at_the_shortcuts_edge(n, ok):
    for body, fine in ((b"[" * n + b"1" + b"]" * n, ok), (b"[" * n + b"]" * n, True),
                       (b'{"a":' * n + b"1" + b"}" * n, ok), (b'["[[[",' * n + b"1" + b"]" * n, ok)):
        if fine:
            wire.loads(body)
        else:
            with pytest.raises(wire.WireError, match="deeply"):
                wire.loads(body)


def test_strict_json_keeps_json_loads_messages():
    for body, text in ((b'\xef\xbb\xbf{}', "Unexpected UTF-8 BOM"), (b"{} x", "Extra data"),
                       (b"", "Expecting value")):
        with pytest.raises(wire.WireError, match=f"malformed JSON: {text}"):
            wire.loads(body)
    assert wire.loads('{"a":[1.10,"元"]}') == {"a": [Decimal("1.10"), "元"]}  # str in, as bytes
