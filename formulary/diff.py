"""What changed between two versions of the formulary, field by field.

The supervisor issues formulary updates; before a clinic switches, the update screen (and the
audit log) shows which drugs were added or removed and which fields of the others changed.
Drugs are matched by national code: a new code is a new drug even if the name is the same.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Iterable

from .drugs import CLASS_NAMES, SEX_NAMES, Drug, yuan

# Chinese labels for the compared fields, in display order (code is the identity, not compared).
FIELD_LABELS = {
    "name": "名称",
    "trade_names": "商品名",
    "form": "剂型",
    "strength": "规格",
    "unit": "单位",
    "pack": "包装数量",
    "pack_unit": "包装单位",
    "price_fen": "价格",
    "ceiling_fen": "医保限价",
    "chrgitm_lv": "甲乙丙类",
    "atc": "ATC 分类",
    "max_daily": "每日最大量",
    "std_days": "标准天数",
    "chronic": "可开长期处方",
    "restrict_dx": "限定诊断",
    "min_age": "最小年龄",
    "max_age": "最大年龄",
    "sex": "限定性别",
}
assert set(FIELD_LABELS) == {f.name for f in fields(Drug)} - {"code"}


def _show(field: str, value: object) -> str:
    """A field value as the update screen shows it."""
    if value is None or value == ():
        return "无"
    if field in ("price_fen", "ceiling_fen"):
        return f"{yuan(value)} 元"  # type: ignore[arg-type]
    if field == "chrgitm_lv":
        return CLASS_NAMES.get(str(value), str(value))
    if field == "chronic":
        return "是" if value else "否"
    if field == "sex":
        return f"{SEX_NAMES.get(str(value), value)}性"
    if isinstance(value, tuple):
        return "；".join(value)
    return str(value)


@dataclass(frozen=True, slots=True)
class FieldChange:
    field: str  # Drug field name, e.g. "price_fen"
    old: object
    new: object

    def describe(self) -> str:
        """价格 18.90 元 → 4.20 元"""
        return f"{FIELD_LABELS[self.field]} {_show(self.field, self.old)} → {_show(self.field, self.new)}"


@dataclass(frozen=True, slots=True)
class DrugChange:
    code: str
    name: str  # the new name
    changes: tuple[FieldChange, ...]

    def describe(self) -> str:
        return f"{self.name}（{self.code}）：" + "，".join(c.describe() for c in self.changes)

    def field(self, name: str) -> FieldChange | None:
        return next((c for c in self.changes if c.field == name), None)


@dataclass(frozen=True, slots=True)
class FormularyDiff:
    added: tuple[Drug, ...]  # in the order of the new version
    removed: tuple[Drug, ...]  # in the order of the old version
    changed: tuple[DrugChange, ...]  # in the order of the new version

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def summary(self) -> str:
        return f"新增 {len(self.added)} 种，删除 {len(self.removed)} 种，变更 {len(self.changed)} 种"


def diff(old: Iterable[Drug], new: Iterable[Drug]) -> FormularyDiff:
    """Added, removed and changed drugs from ``old`` to ``new`` (matched by code)."""
    old_by_code = {d.code: d for d in old}
    new_list = list(new)
    new_codes = {d.code for d in new_list}
    added = tuple(d for d in new_list if d.code not in old_by_code)
    removed = tuple(d for code, d in old_by_code.items() if code not in new_codes)
    changed = []
    for d in new_list:
        before = old_by_code.get(d.code)
        if before is None or before == d:
            continue
        changes = tuple(
            FieldChange(f, getattr(before, f), getattr(d, f))
            for f in FIELD_LABELS
            if getattr(before, f) != getattr(d, f)
        )
        changed.append(DrugChange(d.code, d.name, changes))
    return FormularyDiff(added, removed, tuple(changed))
