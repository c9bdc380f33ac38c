"""The simulator's own JSON output: byte for byte what settlement.wire.dumps writes.

The simulator encodes every answer and hashes every body (app.body_hash); wire.dumps builds a
json.JSONEncoder for each string it writes, which made encoding a sixth of the simulator's
CPU per call. Same rules here: compact, UTF-8 (ensure_ascii off), Decimal exactly as
format(d, "f"), floats refused; `sort_keys` writes a dict's keys in sorted order (the
canonical form the idempotency hash is taken of). tests/mock_network/test_sim_jsonout.py
checks it against wire.dumps.
"""
from __future__ import annotations

from decimal import Decimal
from json.encoder import encode_basestring  # json.dumps(s, ensure_ascii=False) uses it
from typing import Any

from settlement.wire import WireError


def dumps(obj: Any, *, sort_keys: bool = False) -> bytes:
    out: list[str] = []
    _encode(obj, out, sort_keys)
    return "".join(out).encode("utf-8")


def _encode(obj: Any, out: list[str], sort_keys: bool) -> None:
    t = type(obj)  # exact types first (what wire.loads and the handlers make), then wire's order
    if t is str:
        out.append(encode_basestring(obj))
    elif t is dict:
        _dict(obj, out, sort_keys)
    elif obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif t is Decimal:
        _decimal(obj, out)
    elif t is int:
        out.append(str(obj))
    elif t is list or t is tuple:
        _list(obj, out, sort_keys)
    elif isinstance(obj, int):
        out.append(str(obj))
    elif isinstance(obj, Decimal):
        _decimal(obj, out)
    elif isinstance(obj, float):
        raise WireError("floats are not sent on the wire; use Decimal")
    elif isinstance(obj, str):
        out.append(encode_basestring(obj))
    elif isinstance(obj, dict):
        _dict(obj, out, sort_keys)
    elif isinstance(obj, (list, tuple)):
        _list(obj, out, sort_keys)
    else:
        raise WireError(f"cannot encode {type(obj).__name__}")


def _decimal(obj: Decimal, out: list[str]) -> None:
    if not obj.is_finite():
        raise WireError("non-finite Decimal")
    out.append(format(obj, "f"))


def _dict(obj: dict, out: list[str], sort_keys: bool) -> None:
    if not obj:
        out.append("{}")
        return
    sep = "{"
    for k in (sorted(obj) if sort_keys else obj):
        out.append(sep)
        out.append(encode_basestring(str(k)))
        out.append(":")
        _encode(obj[k], out, sort_keys)
        sep = ","
    out.append("}")


def _list(obj: list | tuple, out: list[str], sort_keys: bool) -> None:
    if not obj:
        out.append("[]")
        return
    sep = "["
    for v in obj:
        out.append(sep)
        _encode(v, out, sort_keys)
        sep = ","
    out.append("]")
