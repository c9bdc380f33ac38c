"""The clinic's formulary: look a drug up by code, search it, or resolve what the worker typed."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Iterable, Iterator

from .drugs import CODE_RE, Drug, load_csv, parse_csv
from .errors import DrugLookupError, FormularyDataError
from .packaged import read_packaged
from .search import EXACT, SearchIndex

DEFAULT_FILE = "formulary_v2.csv"
_AMBIGUOUS_SHOWN = 5  # names listed in an ambiguity message before "等 N 种"


class Formulary:
    """An immutable set of drugs with code lookup and pinyin search."""

    def __init__(self, drugs: Iterable[Drug]) -> None:
        self._drugs = tuple(drugs)
        self._by_code: dict[str, Drug] = {}
        for d in self._drugs:
            if d.code in self._by_code:
                raise FormularyDataError(f"药品编码 {d.code} 重复", f"duplicate code {d.code}")
            self._by_code[d.code] = d
        self._index = SearchIndex(self._drugs)

    @classmethod
    def load_default(cls) -> "Formulary":
        """The formulary shipped with the package (formulary/data/formulary_v2.csv)."""
        return _default()

    @classmethod
    def from_csv(cls, path: str | Path) -> "Formulary":
        return cls(load_csv(path))

    @property
    def drugs(self) -> tuple[Drug, ...]:
        return self._drugs

    def __len__(self) -> int:
        return len(self._drugs)

    def __iter__(self) -> Iterator[Drug]:
        return iter(self._drugs)

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and code.strip().upper() in self._by_code

    def by_code(self, code: str) -> Drug | None:
        return self._by_code.get(code.strip().upper())

    def search(self, query: str, limit: int | None = 20) -> list[Drug]:
        """Drugs matching ``query``: exact code/name first, then prefix, then substring matches."""
        return self._index.search(query, limit)

    def resolve(self, term: str) -> Drug:
        """The one drug ``term`` denotes: a national code, or a search with a single answer.

        A term matching several drugs still resolves if exactly one of them matches it exactly
        (its name, a trade name or its code), so typing a full name never becomes ambiguous.
        """
        text = term.strip()
        if not text:
            raise DrugLookupError("请输入药品名称、拼音首字母或医保编码", "empty drug term")
        if CODE_RE.match(text.upper()):
            drug = self.by_code(text)
            if drug is None:
                raise DrugLookupError(
                    f"药品 {text.upper()} 不在本卫生室医保目录内", f"code not in formulary: {text!r}"
                )
            return drug
        hits = self._index.ranked(text)
        if len(hits) == 1:
            return hits[0][1]
        exact = [d for rank, d in hits if rank == EXACT]
        if len(exact) == 1:
            return exact[0]
        if not hits:
            raise DrugLookupError(
                f"找不到药品“{text}”，请换个写法或用拼音首字母搜索", f"no drug matches {text!r}"
            )
        names = [d.name for _, d in hits[:_AMBIGUOUS_SHOWN]]
        more = f"等 {len(hits)} 种" if len(hits) > _AMBIGUOUS_SHOWN else ""
        raise DrugLookupError(
            f"“{text}”对应多种药品：{'、'.join(names)}{more}，请写得更具体",
            f"{len(hits)} drugs match {text!r}: {[d.code for _, d in hits]}",
        )


@functools.cache
def _default() -> Formulary:
    # Cached: the shipped file never changes at run time and a Formulary is immutable.
    return Formulary(parse_csv(read_packaged(DEFAULT_FILE), source=DEFAULT_FILE))
