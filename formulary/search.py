"""Search by pinyin initials, full pinyin, Chinese text, alias (trade name) or code.

Used for drugs (name + trade names, national code) and for diagnoses (name, ICD-10 code).

All pinyin is computed once when the index is built; a query is then a few substring tests
per drug in C (``str.__contains__``), well under a millisecond for a 200-drug formulary.

Polyphonic characters (地 di/de, 长 chang/zhang, 行 xing/hang, 重 zhong/chong, 参 shen/can)
are indexed under every reading, because the counter worker types what they say, not what the
dictionary's phrase table guesses. Readings of one name are stored as ``|``-separated variants
so "prefix of any variant" is a single ``"|" + q in blob`` test, and "all of a variant" is
``"|" + q + "|" in blob``.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from pypinyin import Style, lazy_pinyin, pinyin

from .drugs import Drug

T = TypeVar("T")

# Ranks, best first.
EXACT, PREFIX, SUBSTRING = 0, 1, 2

# A name whose readings multiply past this is indexed under its default reading plus the
# first-reading-of-each-character variant only (the formulary's worst, 地塞米松磷酸钠注射液, has 96).
_MAX_VARIANTS = 256
_NON_KEY = re.compile(r"[^a-z0-9]")
_ASCII_QUERY = re.compile(r"^[A-Za-z0-9]+$")


def drug_code_query(query: str) -> bool:
    """Whether to try an (upper-cased) query as a drug-code prefix: "XC08" and longer only,
    since shorter X/Z queries are far likelier to be pinyin initials."""
    return len(query) >= 4 and query[0] in "XZ"


def _key(text: str) -> str:
    """Lower-case ASCII letters and digits only: how a pinyin query is compared."""
    return _NON_KEY.sub("", text.lower())


def _is_cjk(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff"


@functools.lru_cache(maxsize=8192)
def _char_readings(ch: str, style: Style) -> tuple[str, ...]:
    """Every reading of one character in ``style`` (cached: names share most characters)."""
    readings = [_key(r) for r in pinyin(ch, style=style, heteronym=True)[0]]
    return tuple(dict.fromkeys(r for r in readings if r)) or ("",)


def reading_variants(text: str, style: Style) -> list[str]:
    """All spellings of ``text`` in ``style`` (initials or full pinyin), default reading first."""
    default = _key("".join(lazy_pinyin(text, style=style)))
    options: list[list[str]] = []
    for ch in text:
        if _is_cjk(ch):
            options.append(list(_char_readings(ch, style)))
        else:
            options.append([_key(ch)])
    count = 1
    for opts in options:
        count *= len(opts)
    if count > _MAX_VARIANTS:
        combos: Iterable[tuple[str, ...]] = [tuple(o[0] for o in options)]
    else:
        combos = itertools.product(*options)
    variants = dict.fromkeys([default, *("".join(c) for c in combos)])
    return [v for v in variants if v]


@dataclass(frozen=True, slots=True)
class _Entry(Generic[T]):
    item: T
    code: str
    name: str  # lower-cased, so "维生素b1" finds 维生素B1片
    trades: tuple[str, ...]  # lower-cased
    usual: str  # "|xbdpksp|xiaobendipingkongshipian|bxt|...": default readings, name and trades
    other: str  # the same built from the other readings of polyphonic characters


def _entry(item: T, code: str, name: str, aliases: tuple[str, ...]) -> _Entry[T]:
    usual: list[str] = []
    other: list[str] = []
    for text in (name, *aliases):
        for style in (Style.FIRST_LETTER, Style.NORMAL):
            default, *rest = reading_variants(text, style)
            usual.append(default)
            other.extend(rest)
    return _Entry(
        item=item,
        code=code.upper(),
        name=name.lower(),
        trades=tuple(t.lower() for t in aliases),
        usual="|" + "|".join(usual) + "|",
        other="|" + "|".join(other) + "|",
    )


def _drug_keys(drug: Drug) -> tuple[str, str, tuple[str, ...]]:
    return drug.code, drug.name, drug.trade_names


class SearchIndex(Generic[T]):
    """Precomputed search keys for a list of items (drugs by default).

    ``keys(item)`` gives (code, name, aliases); ``code_query(QUERY)`` says whether an
    upper-cased query should also be tried as a code prefix.
    """

    def __init__(
        self,
        items: Iterable[T],
        keys: Callable[[T], tuple[str, str, tuple[str, ...]]] = _drug_keys,  # type: ignore[assignment]
        code_query: Callable[[str], bool] = drug_code_query,
    ) -> None:
        self._entries = tuple(_entry(item, *keys(item)) for item in items)
        self._code_query = code_query

    def ranked(self, query: str) -> list[tuple[int, T]]:
        """Every matching item with its rank (EXACT, PREFIX, SUBSTRING), best first.

        EXACT: the code, the name or an alias, or the whole initials or pinyin of one of them.
        Within a rank a match on the usual reading comes before one that needs a rarer reading
        of a polyphonic character (so "a" lists 阿... before 厄... read "a"); then by name.
        """
        text = query.strip().lower()
        if not text:
            return []
        upper = text.upper()
        ascii_q = text if _ASCII_QUERY.match(text) else ""
        code_q = upper if self._code_query(upper) else ""
        bar_q = "|" + ascii_q
        whole_q = bar_q + "|"
        hits: list[tuple[int, int, str, str, T]] = []
        for e in self._entries:
            rare = 0
            if (
                e.code == upper
                or e.name == text
                or text in e.trades
                or (ascii_q and whole_q in e.usual)
            ):
                rank = EXACT
            elif ascii_q and whole_q in e.other:
                rank, rare = EXACT, 1
            elif (
                (code_q and e.code.startswith(code_q))
                or e.name.startswith(text)
                or any(t.startswith(text) for t in e.trades)
                or (ascii_q and bar_q in e.usual)
            ):
                rank = PREFIX
            elif ascii_q and bar_q in e.other:
                rank, rare = PREFIX, 1
            elif (
                text in e.name
                or any(text in t for t in e.trades)
                or (ascii_q and ascii_q in e.usual)
            ):
                rank = SUBSTRING
            elif ascii_q and ascii_q in e.other:
                rank, rare = SUBSTRING, 1
            else:
                continue
            hits.append((rank, rare, e.name, e.code, e.item))
        hits.sort(key=lambda h: h[:4])
        return [(rank, item) for rank, _, _, _, item in hits]

    def search(self, query: str, limit: int | None = 20) -> list[T]:
        hits = self.ranked(query)
        if limit is not None:
            hits = hits[:limit]
        return [item for _, item in hits]
