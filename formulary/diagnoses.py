"""The common village-clinic diagnoses (ICD-10 code, Chinese name) with pinyin search.

The rules match diagnoses by ICD-10 prefix (R003's chronic list, R007's restrict_dx), so the
counter should record a coded diagnosis; this list lets the worker find one by typing `gxy`.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from .errors import FormularyDataError
from .packaged import read_packaged
from .search import SearchIndex

DEFAULT_FILE = "diagnoses.csv"
ICD10_RE = re.compile(r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?$")
_CODE_QUERY = re.compile(r"^[A-Z][0-9]")


@dataclass(frozen=True, slots=True)
class Diagnosis:
    code: str  # ICD-10, e.g. "J06.9"
    name: str  # 急性上呼吸道感染
    aliases: tuple[str, ...] = ()  # what people say: 上感, 感冒

    @property
    def category(self) -> str:
        """The three-character ICD-10 category: "J06" for "J06.9"."""
        return self.code.split(".")[0]


def parse_diagnoses(text: str, source: str = DEFAULT_FILE) -> list[Diagnosis]:
    """Reads ``code,name[,aliases]`` rows; raises FormularyDataError naming a bad row."""
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    if not {"code", "name"} <= set(reader.fieldnames or ()):
        raise FormularyDataError(f"{source} 需要 code 和 name 两列", f"{source}: header {reader.fieldnames}")
    out: list[Diagnosis] = []
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        code = (row.get("code") or "").strip().upper()
        name = (row.get("name") or "").strip()
        if not ICD10_RE.match(code):
            raise FormularyDataError(
                f"{source} 第 {line} 行：“{code}”不是 ICD-10 编码", f"{source}:{line}: bad code {code!r}"
            )
        if not name:
            raise FormularyDataError(f"{source} 第 {line} 行：缺少诊断名称", f"{source}:{line}: no name")
        if code in seen:
            raise FormularyDataError(
                f"{source} 第 {line} 行：编码 {code} 与第 {seen[code]} 行重复", f"{source}:{line}: duplicate {code}"
            )
        seen[code] = line
        aliases = tuple(a.strip() for a in (row.get("aliases") or "").split(";") if a.strip())
        out.append(Diagnosis(code, name, aliases))
    return out


class DiagnosisList:
    """Diagnoses by code, and searched like drugs: initials, pinyin, Chinese, code prefix."""

    def __init__(self, diagnoses: Iterable[Diagnosis]) -> None:
        self._items = tuple(diagnoses)
        self._by_code = {d.code: d for d in self._items}
        self._index: SearchIndex[Diagnosis] = SearchIndex(
            self._items,
            keys=lambda d: (d.code, d.name, d.aliases),
            code_query=lambda q: bool(_CODE_QUERY.match(q)),
        )

    @classmethod
    def load_default(cls) -> "DiagnosisList":
        return _default()

    @classmethod
    def from_csv(cls, path: str | Path) -> "DiagnosisList":
        path = Path(path)
        return cls(parse_diagnoses(path.read_text(encoding="utf-8"), source=path.name))

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Diagnosis]:
        return iter(self._items)

    def by_code(self, code: str) -> Diagnosis | None:
        return self._by_code.get(code.strip().upper())

    def name_of(self, code: str) -> str:
        """The name for a code, falling back to an entry of its category, else the code itself."""
        code = code.strip().upper()
        category = code.split(".")[0]
        found = (
            self._by_code.get(code)
            or self._by_code.get(category)
            or next((d for d in self._items if d.category == category), None)
        )
        return found.name if found else code

    def search(self, query: str, limit: int | None = 20) -> list[Diagnosis]:
        return self._index.search(query, limit)


@functools.cache
def _default() -> DiagnosisList:
    return DiagnosisList(parse_diagnoses(read_packaged(DEFAULT_FILE)))
