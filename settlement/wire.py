"""The platform's JSON: strict parsing, Decimal-exact encoding, and the envelope.

Field names stay the platform's own (protocol.md §1); nothing outside the wire layer
should need to know them.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

SERVICE_PATH = "/fsi/api/rsfComIfsService/callService"
MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 32
MSGID_RE = re.compile(r"^[A-Z0-9]{12}\d{14}\d{4}$")


class WireError(ValueError):
    """A body that is not acceptable JSON for the platform."""


def _reject_constant(name: str) -> Any:
    raise WireError(f"non-finite number {name} in JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):  # a key came twice: name the first one repeated
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise WireError(f"duplicate key {k!r} in JSON")
            seen.add(k)
    return out


def _depth(obj: Any, limit: int) -> None:
    """Raise if any value sits deeper than `limit` (the top level is depth 1). Only containers
    are walked: a scalar is too deep exactly when its container is non-empty at depth `limit`."""
    if type(obj) is not dict and type(obj) is not list:
        return  # a scalar at depth 1 (wire.loads makes no dict or list subclasses)
    stack = [(obj, 1)]
    while stack:
        cur, d = stack.pop()
        children = cur.values() if type(cur) is dict else cur
        if d >= limit:
            if children:  # its members are at depth limit + 1
                raise WireError("JSON nested too deeply")
            continue
        for v in children:
            t = type(v)
            if t is dict or t is list:
                stack.append((v, d + 1))


# Built once: json.loads builds a decoder (and its C scanner) on every call given any option.
_decoder = json.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant,
                            object_pairs_hook=_no_duplicates)


def loads(data: bytes | str) -> Any:
    """Parse JSON strictly: Decimal numbers, no NaN/Infinity, no duplicate keys, bounded."""
    if isinstance(data, str):
        raw = data.encode("utf-8")
        text: str | None = data
    else:
        raw, text = data, None
    if len(raw) > MAX_BODY_BYTES:
        raise WireError(f"body of {len(raw)} bytes exceeds {MAX_BODY_BYTES}")
    try:
        if text is None:
            text = raw.decode("utf-8")
        if text.startswith("\ufeff"):  # json.loads refuses it so; its decoder alone would not
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        obj = _decoder.decode(text)
    except WireError:
        raise
    except RecursionError:  # thousands of nested brackets: the parser's own stack gives out first
        raise WireError("JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise WireError(f"malformed JSON: {exc}") from exc
    if _may_be_too_deep(raw):
        _depth(obj, MAX_DEPTH)
    return obj


def _may_be_too_deep(raw: bytes) -> bool:
    """A value deeper than MAX_DEPTH sits in at least MAX_DEPTH containers, so a body with fewer
    opening brackets needs no walk (brackets inside strings count too: that errs towards walking;
    in UTF-8 these bytes are never part of another character)."""
    return raw.count(b"[") + raw.count(b"{") >= MAX_DEPTH


def dumps(obj: Any, *, sort_keys: bool = False) -> bytes:
    """Encode to compact UTF-8 JSON; Decimal is written exactly, floats are refused.
    `sort_keys` writes every dict's keys sorted (the simulator's idempotency hash is of that)."""
    parts: list[str] = []
    _encode(obj, parts, sort_keys)
    return "".join(parts).encode("utf-8")


# json.dumps(s, ensure_ascii=False) for a str, byte for byte, without making an encoder per call.
_encode_str = json.encoder.encode_basestring


def _encode(obj: Any, out: list[str], sort_keys: bool) -> None:
    t = type(obj)  # the exact types wire.loads and the callers make first, subclasses after
    if t is str:
        out.append(_encode_str(obj))
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
        out.append(_encode_str(obj))
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
        out.append(_encode_str(str(k)))
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


def inf_time(now: datetime) -> str:
    return now.strftime("%Y-%m-%d %H:%M:%S")


def make_msgid(fixmedins_code: str, now: datetime, serial: int) -> str:
    """fixmedins_code (12) + yyyyMMddHHmmss (14) + 4-digit serial = 30 chars."""
    if len(fixmedins_code) != 12:
        raise ValueError("fixmedins_code must be 12 characters")
    if not 0 <= serial <= 9999:
        raise ValueError("serial must be 0..9999; move to the next second instead of wrapping")
    return f"{fixmedins_code}{now.strftime('%Y%m%d%H%M%S')}{serial:04d}"


@dataclass(frozen=True)
class Institution:
    fixmedins_code: str = "H31011600001"
    fixmedins_name: str = "枫泾镇新春村卫生室"
    mdtrtarea_admvs: str = "310116"


def envelope(
    *,
    infno: str,
    msgid: str,
    institution: Institution,
    opter: str,
    opter_name: str,
    now: datetime,
    input: dict[str, Any],
    sign_no: str = "",
    insuplc_admdvs: str = "",
) -> dict[str, Any]:
    """The request body of protocol.md §1, field for field."""
    return {
        "infno": infno,
        "msgid": msgid,
        "mdtrtarea_admvs": institution.mdtrtarea_admvs,
        "insuplc_admdvs": insuplc_admdvs,
        "recer_sys_code": "YBXT",
        "dev_no": "",
        "dev_safe_info": "",
        "cainfo": "",
        "signtype": "",
        "infver": "V1.0",
        "opter_type": "1",
        "opter": opter,
        "opter_name": opter_name,
        "inf_time": inf_time(now),
        "fixmedins_code": institution.fixmedins_code,
        "fixmedins_name": institution.fixmedins_name,
        "sign_no": sign_no,
        "input": input,
    }
