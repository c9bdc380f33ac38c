"""The simulator writes answers and idempotency hashes with settlement.wire.dumps: sorted keys
give the same bytes as the key-sorted copy earlier versions hashed, so stored answers and
hashes stay valid; and the output is what json.dumps would write."""
from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

import json

from settlement import wire
from settlement.mock_network.app import body_hash

scalars = (st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.text()
           | st.decimals(-10**9, 10**9, places=2) | st.decimals(-10**9, 10**9, places=6))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=25)


def canon(x):
    if isinstance(x, dict):
        return {k: canon(x[k]) for k in sorted(x)}
    if isinstance(x, list):
        return [canon(v) for v in x]
    return x


def _as_json(x):  # json.dumps cannot write Decimal exactly: a float-free stand-in
    if isinstance(x, dict):
        return {k: _as_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_as_json(v) for v in x]
    return f"D{format(x, 'f')}" if isinstance(x, Decimal) else x


@given(values)
def test_sim_json_encoding_sorted_keys_are_the_sorted_copy_and_plain_is_json(v):
    assert wire.dumps(v, sort_keys=True) == wire.dumps(canon(v))
    assert wire.loads(wire.dumps(v)) == v
    assert wire.loads(wire.dumps(v, sort_keys=True)) == v
    assert json.dumps(_as_json(v), ensure_ascii=False, separators=(",", ":")).encode() == \
        wire.dumps(_as_json(v))


def test_sim_json_encoding_edge_cases():
    for v, text in (({"s": "引号\"\\\n\u0000\u2028", "d": Decimal("-0.00"), "e": Decimal("1E+3")},
                     '{"s":"引号\\"\\\\\\n\\u0000\u2028","d":-0.00,"e":1000}'),
                    ((1, 2), "[1,2]"), ([], "[]"), ({}, "{}"),
                    ({"t": ({"b": 1, "a": 2},)}, '{"t":[{"b":1,"a":2}]}')):
        assert wire.dumps(v).decode() == text
    for bad in (1.5, Decimal("NaN"), Decimal("Infinity"), object()):
        with pytest.raises(wire.WireError):
            wire.dumps({"x": bad})
        with pytest.raises(wire.WireError):
            wire.dumps({"x": bad}, sort_keys=True)


def test_sim_body_hash_is_the_hash_of_the_key_sorted_body():
    import hashlib
    env = wire.loads(b'{"b": [1, {"z": 1.10, "a": "x"}], "a": null}')
    assert body_hash(env) == hashlib.sha256(wire.dumps(canon(env))).hexdigest()
