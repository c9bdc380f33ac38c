"""The drug record and the CSV file it is read from.

A formulary file is issued by the town supervisor and may be edited by hand, so every row is
validated on load and a bad row stops the load with an error naming the file and line: a
half-loaded formulary would silently refuse (or allow) drugs at the counter.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import FormularyDataError

# Column order of formulary_vN.csv (docs/formulary.md describes each one).
COLUMNS = (
    "code", "name", "trade_names", "form", "strength", "unit", "pack", "pack_unit",
    "price_fen", "ceiling_fen", "class", "atc", "max_daily", "std_days", "chronic",
    "restrict_dx", "min_age", "max_age", "sex",
)

# 23-char national drug code: kind · ATC level 4 · generic-name id · dosage form · strength ·
# pack · manufacturer (protocol.md §3). Strength and pack are digits in every real code seen,
# but we accept letters there too rather than reject a real code over an inferred detail.
CODE_RE = re.compile(
    r"^(?P<kind>[XZ])(?P<atc>[A-Z][0-9]{2}[A-Z]{2})(?P<generic>[A-Z0-9]{4})"
    r"(?P<form>[A-Z][0-9]{3})(?P<strength>[0-9A-Z]{2})(?P<pack>[0-9A-Z]{2})(?P<maker>[0-9]{5})$"
)
ATC_RE = re.compile(r"^[A-Z][0-9]{2}[A-Z]{2}$")
# An ICD-10 prefix: a chapter letter ("S"), a category ("I10") or a subcategory ("J06.9").
ICD_PREFIX_RE = re.compile(r"^[A-Z]([0-9]{1,2}(\.[0-9A-Z]{1,4})?)?$")

CLASS_NAMES = {"01": "甲类", "02": "乙类", "03": "丙类"}
SEX_NAMES = {"1": "男", "2": "女"}  # the platform's `gend` codes

# Dosage-form segment of the code as used in this formulary. A001/A010/A011/A012/B002 are seen
# in real codes; the others are this project's assignment (see docs/formulary.md).
FORM_CODES = {
    "A001": "片", "A005": "含片", "A006": "咀嚼片", "A010": "缓释片", "A011": "控释片",
    "A012": "肠溶片", "E001": "胶囊", "E003": "缓释胶囊", "E004": "肠溶胶囊", "E006": "软胶囊",
    "N001": "颗粒", "S001": "散", "K001": "口服溶液", "K003": "糖浆", "K006": "煎膏",
    "K007": "露剂", "K009": "混悬液", "L001": "酊剂", "L002": "外用溶液", "P001": "丸",
    "P002": "蜜丸", "P003": "滴丸", "F001": "软膏", "F002": "乳膏", "F003": "凝胶",
    "F008": "贴膏", "G001": "滴眼液", "G003": "眼膏", "D001": "气雾剂", "C003": "灌肠剂",
    "B002": "注射液",
}


@dataclass(frozen=True, slots=True)
class Drug:
    """One drug of the clinic's formulary, as sold at the counter (one sale unit = one box...)."""

    code: str  # 23-char national code
    name: str  # generic name with dosage form, e.g. 硝苯地平控释片
    trade_names: tuple[str, ...]
    form: str
    strength: str
    unit: str  # sale unit: 盒, 瓶, 支
    pack: int  # smallest units (pack_unit) per sale unit
    pack_unit: str  # 片, 粒, 袋, 支, ml ...
    price_fen: int  # price per sale unit
    ceiling_fen: int  # the insurer's price ceiling per sale unit
    chrgitm_lv: str  # 01 甲, 02 乙, 03 丙
    atc: str  # ATC level-4 group (TCM category for Z codes)
    max_daily: int  # label maximum daily dose, in pack_units
    std_days: int  # days one sale unit lasts at the usual dose
    chronic: bool  # may go on a long prescription for a stable chronic disease
    restrict_dx: tuple[str, ...]  # ICD-10 prefixes the fund pays it for; empty = unrestricted
    min_age: int | None  # inclusive, years
    max_age: int | None  # inclusive, years
    sex: str | None  # "1" male only, "2" female only

    @property
    def kind(self) -> str:
        """"X" Western medicine, "Z" Chinese patent medicine."""
        return self.code[0]

    @property
    def generic_id(self) -> str:
        """The code's generic-name segment: the same ingredient across forms and makers."""
        return self.code[6:10]

    @property
    def form_code(self) -> str:
        return self.code[10:14]

    @property
    def class_name(self) -> str:
        return CLASS_NAMES[self.chrgitm_lv]

    @property
    def label(self) -> str:
        """Short display text: 硝苯地平控释片 30mg×7片/盒."""
        return f"{self.name} {self.strength}×{self.pack}{self.pack_unit}/{self.unit}"


def ingredient_key(code: str) -> str:
    """Kind + generic-name id of a national code: equal for the same ingredient in any form,
    strength or maker (so a repeat of 阿莫西林 is seen whether tablet or capsule)."""
    code = code.strip().upper()
    return code[0] + code[6:10]


def yuan(fen: int) -> str:
    """Fen as yuan with two decimals, for messages: 3170 -> "31.70"."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


class _RowError(Exception):
    pass


def _int(row: dict[str, str], column: str, *, minimum: int = 0) -> int:
    raw = (row.get(column) or "").strip()
    try:
        value = int(raw)
    except ValueError:
        raise _RowError(f"{column} 应为整数，实为“{raw}”") from None
    if value < minimum:
        raise _RowError(f"{column} 不能小于 {minimum}，实为 {value}")
    return value


def _opt_int(row: dict[str, str], column: str) -> int | None:
    if not (row.get(column) or "").strip():
        return None
    return _int(row, column)


def _split(raw: str | None) -> tuple[str, ...]:
    return tuple(p.strip() for p in (raw or "").split(";") if p.strip())


def _drug_from_row(row: dict[str, str]) -> Drug:
    code = (row.get("code") or "").strip()
    m = CODE_RE.match(code)
    if not m:
        raise _RowError(f"药品编码“{code}”格式不对，应为 X/Z 开头的 23 位国家医保编码")
    atc = (row.get("atc") or "").strip()
    if not ATC_RE.match(atc):
        raise _RowError(f"atc“{atc}”应为 5 位 ATC 四级分类，如 C08CA")
    if m["atc"] != atc:
        raise _RowError(f"atc {atc} 与编码中的分类 {m['atc']} 不一致")
    name = (row.get("name") or "").strip()
    if not name:
        raise _RowError("缺少药品名称")
    lv = (row.get("class") or "").strip()
    if lv not in CLASS_NAMES:
        raise _RowError(f"class 应为 01/02/03（甲/乙/丙），实为“{lv}”")
    chronic = (row.get("chronic") or "").strip()
    if chronic not in ("0", "1"):
        raise _RowError(f"chronic 应为 0 或 1，实为“{chronic}”")
    restrict = _split(row.get("restrict_dx"))
    for prefix in restrict:
        if not ICD_PREFIX_RE.match(prefix):
            raise _RowError(f"restrict_dx 中“{prefix}”不是 ICD-10 编码前缀")
    sex = (row.get("sex") or "").strip() or None
    if sex is not None and sex not in SEX_NAMES:
        raise _RowError(f"sex 应为空、1（男）或 2（女），实为“{sex}”")
    min_age, max_age = _opt_int(row, "min_age"), _opt_int(row, "max_age")
    if min_age is not None and max_age is not None and min_age > max_age:
        raise _RowError(f"min_age {min_age} 大于 max_age {max_age}")
    for column in ("form", "strength", "unit", "pack_unit"):
        if not (row.get(column) or "").strip():
            raise _RowError(f"缺少 {column}")
    return Drug(
        code=code,
        name=name,
        trade_names=_split(row.get("trade_names")),
        form=row["form"].strip(),
        strength=row["strength"].strip(),
        unit=row["unit"].strip(),
        pack=_int(row, "pack", minimum=1),
        pack_unit=row["pack_unit"].strip(),
        price_fen=_int(row, "price_fen", minimum=1),
        ceiling_fen=_int(row, "ceiling_fen"),
        chrgitm_lv=lv,
        atc=atc,
        max_daily=_int(row, "max_daily", minimum=1),
        std_days=_int(row, "std_days", minimum=1),
        chronic=chronic == "1",
        restrict_dx=restrict,
        min_age=min_age,
        max_age=max_age,
        sex=sex,
    )


def parse_csv(text: str, source: str = "formulary.csv") -> list[Drug]:
    """Parses and validates a formulary file's text; raises FormularyDataError naming the row."""
    text = text.removeprefix("\ufeff")  # Excel saves UTF-8 with a BOM
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise FormularyDataError(
            f"{source} 缺少列：{'、'.join(missing)}", f"{source}: missing columns {missing}"
        )
    drugs: list[Drug] = []
    first_line: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        if None in row:  # more cells than header columns
            raise FormularyDataError(
                f"{source} 第 {line} 行：列数多于表头", f"{source}:{line}: extra cells {row[None]}"
            )
        code = (row.get("code") or "").strip()
        try:
            drug = _drug_from_row(row)
        except _RowError as e:
            raise FormularyDataError(
                f"{source} 第 {line} 行（{code or '无编码'}）：{e}", f"{source}:{line}: {e}"
            ) from None
        if drug.code in first_line:
            raise FormularyDataError(
                f"{source} 第 {line} 行：编码 {drug.code} 与第 {first_line[drug.code]} 行重复",
                f"{source}:{line}: duplicate code {drug.code}",
            )
        first_line[drug.code] = line
        drugs.append(drug)
    if not drugs:
        raise FormularyDataError(f"{source} 没有药品", f"{source}: no rows")
    return drugs


def load_csv(path: str | Path) -> list[Drug]:
    """Reads a formulary CSV file (UTF-8, header row) into validated drugs."""
    path = Path(path)
    return parse_csv(path.read_text(encoding="utf-8"), source=path.name)
