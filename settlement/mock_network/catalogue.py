"""The simulator's list of insured items (code -> class, price ceiling).

Built from the formulary data file when it exists; everything not listed is fully self-paid.
Kept behind `catalogue()` so a real catalogue (1301/1312) can replace it later.
"""
from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from .policy import Policy

log = logging.getLogger(__name__)

FORMULARY_CSV = Path(__file__).resolve().parents[2] / "formulary" / "data" / "formulary_v2.csv"
_CLASS_WORDS = {"甲": "01", "乙": "02", "丙": "03", "1": "01", "2": "02", "3": "03",
                "01": "01", "02": "02", "03": "03"}


@dataclass(frozen=True)
class Item:
    code: str
    name: str
    chrgitm_lv: str            # 01 甲 / 02 乙 / 03 丙
    price_fen: int | None
    ceiling_fen: int | None    # unit price ceiling; None = no ceiling
    med_chrgitm_type: str      # 09 西药费, 11 中成药费, 12 一般诊疗费, 14 其他费
    lmt_used_flag: str = "0"
    consultation: bool = False
    restrict_dx: tuple[str, ...] = ()  # ICD-10 prefixes the fund pays this item for; () = any


def chrgitm_type_for(code: str) -> str:
    if code.startswith("X"):
        return "09"
    if code.startswith("Z"):
        return "11"
    return "14"


def _int_or_none(v: str | None) -> int | None:
    if v is None or not v.strip():
        return None
    try:
        d = Decimal(v.strip())
    except InvalidOperation:
        return None
    return int(d) if d == d.to_integral_value() and d >= 0 else None


def load_csv(path: Path) -> dict[str, Item]:
    items: dict[str, Item] = {}
    with path.open(encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            code = (row.get("code") or "").strip()
            lv = _CLASS_WORDS.get((row.get("class") or "").strip())
            if not code or lv is None:
                continue  # a row we cannot classify stays out: fully self-paid
            # A restricted-payment drug: an explicit flag, or the formulary's restrict_dx list.
            dx = tuple(x.strip().upper() for x in (row.get("restrict_dx") or "").split(";") if x.strip())
            flag = (row.get("lmt_used_flag") or "").strip() or ("1" if dx else "0")
            items[code] = Item(code, (row.get("name") or "").strip(), lv,
                               _int_or_none(row.get("price_fen")), _int_or_none(row.get("ceiling_fen")),
                               chrgitm_type_for(code), "1" if flag in ("1", "true", "True") else "0",
                               restrict_dx=dx)
    return items


def catalogue(policy: Policy | None = None, path: str | Path | None = None) -> dict[str, Item]:
    """code -> Item. `path` defaults to the formulary's CSV (a missing file: only the
    consultation fee is listed, everything else is fully self-paid); `policy` (default: the
    default policy file) names the consultation fee item."""
    if policy is None:
        from .policy import load_policy
        policy = load_policy()
    p = Path(path) if path else FORMULARY_CSV
    items: dict[str, Item] = {}
    if p.exists():
        try:
            items = load_csv(p)
        except (OSError, csv.Error, UnicodeDecodeError) as exc:
            log.warning("catalogue %s unreadable (%s); all items fully self-paid", p, exc)
    else:
        log.warning("catalogue %s missing; all items fully self-paid", p)
    items[policy.consultation_code] = Item(
        policy.consultation_code, policy.consultation_name, "01", policy.consultation_price_fen,
        None, "12", "0", consultation=True)
    return items
