"""The simulator's JSON writer (jsonout) is byte for byte settlement.wire.dumps: stored answers
and idempotency hashes of earlier versions stay valid."""
from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settlement import wire
from settlement.mock_network import jsonout
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


@given(values)
def test_sim_jsonout_writes_what_wire_writes(v):
    assert jsonout.dumps(v) == wire.dumps(v)
    assert jsonout.dumps(v, sort_keys=True) == wire.dumps(canon(v))
    assert wire.loads(jsonout.dumps(v)) == v


def test_sim_jsonout_edge_cases():
    for v in ({"s": "引号\"\\\n\u0000\u2028", "d": Decimal("-0.00"), "e": Decimal("1E+3")},
              (1, 2), [], {}, {"t": ({"b": 1, "a": 2},)}):
        assert jsonout.dumps(v) == wire.dumps(v)
    for bad in (1.5, Decimal("NaN"), Decimal("Infinity"), object()):
        with pytest.raises(wire.WireError):
            jsonout.dumps({"x": bad})


def test_sim_body_hash_is_the_hash_of_the_key_sorted_body():
    import hashlib
    env = wire.loads(b'{"b": [1, {"z": 1.10, "a": "x"}], "a": null}')
    assert body_hash(env) == hashlib.sha256(wire.dumps(canon(env))).hexdigest()
