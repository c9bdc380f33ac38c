"""The insurer's national drug catalogue (西药中成药目录): load it, search it, map the formulary to it.

The catalogue comes from the insurer (1301 download or 1312 query, see clinic/catalogue_sync.py)
as tab-separated text, one item a line, no header, columns COLUMNS. It holds ~100,000 items,
so search does not loop over items in Python:

- items are grouped by name (a few thousand distinct names; each name has many makers,
  strengths and packs), and the pinyin of each name is computed once, at load;
- an exact query (name, initials, full pinyin of any reading) is a dict lookup;
- a prefix query is a bisect into the sorted list of all keys;
- a substring query is ``str.find`` over one string holding every name's keys, in rank order,
  stopping once enough names are found; an offset maps back to its name by bisect;
- a national-code query (X/Z + 3 or more characters) is a bisect into the sorted codes.

Ranking: code matches, then exact, then prefix, then substring; within a rank shorter names
first (硝苯地平片 before 硝苯地平缓释片), then by name. Within a name, items in effect come first.
"""

from __future__ import annotations

import io
import zipfile
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pypinyin import Style

from .drugs import CLASS_NAMES, Drug
from .errors import FormularyDataError
from .search import _ASCII_QUERY, _key, reading_variants

COLUMNS = ("hilist_code", "hilist_name", "med_chrgitm_type", "chrgitm_lv", "lmt_used_flag",
           "begndate", "enddate", "vali_flag")
_SEP = "\n"  # between names in the substring blob
_KEYSEP = "|"  # between one name's keys


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    code: str  # hilist_code
    name: str  # hilist_name
    med_chrgitm_type: str  # 09 西药, 11 中成药
    chrgitm_lv: str  # 01 甲, 02 乙, 03 丙
    lmt_used_flag: str  # 1: restricted use
    begndate: str  # ISO date
    enddate: str  # ISO date; 2099-12-31 when open
    vali_flag: str  # 1 valid, 0 withdrawn

    def status_on(self, day: date) -> str:
        """"valid", "invalid" (withdrawn), "ended" (enddate before day), "not_yet"."""
        d = day.isoformat()
        if self.vali_flag != "1":
            return "invalid"
        if self.enddate and self.enddate < d:
            return "ended"
        if self.begndate and self.begndate > d:
            return "not_yet"
        return "valid"


@dataclass(frozen=True, slots=True)
class MappingWarning:
    code: str  # the formulary drug's code
    name: str  # the formulary drug's name
    kind: str  # missing | ended | invalid | not_yet | class | name
    message: str  # Chinese, names the dates and codes


@dataclass(frozen=True, slots=True)
class CatalogueMapping:
    day: date
    entries: dict[str, CatalogueEntry | None]  # formulary code -> its catalogue item
    warnings: tuple[MappingWarning, ...]

    @property
    def mapped(self) -> int:
        return sum(1 for e in self.entries.values() if e is not None)


def parse_rows(text: str, source: str = "catalogue") -> list[CatalogueEntry]:
    out = []
    for n, line in enumerate(text.removeprefix("\ufeff").splitlines(), 1):
        if not line.strip():
            continue
        cells = line.split("\t")
        if len(cells) != len(COLUMNS):
            raise FormularyDataError(f"{source} 第 {n} 行应有 {len(COLUMNS)} 列，实有 {len(cells)} 列",
                                     f"{source}:{n}: {len(cells)} cells")
        out.append(CatalogueEntry(*(c.strip() for c in cells)))
    return out


def rows_text(entries: Iterable[CatalogueEntry]) -> str:
    """The tab-separated text of ``entries`` (the format ``load`` reads)."""
    return "".join("\t".join(_cells(e)) + "\n" for e in entries)


def _cells(e: CatalogueEntry) -> tuple[str, ...]:
    return (e.code, e.name, e.med_chrgitm_type, e.chrgitm_lv, e.lmt_used_flag, e.begndate,
            e.enddate, e.vali_flag)


def _in_effect_first(group: list[CatalogueEntry]) -> tuple[CatalogueEntry, ...]:
    """Valid items first, then the latest end date first, then by code (stable sorts)."""
    group.sort(key=lambda e: e.code)
    group.sort(key=lambda e: e.enddate or "9999", reverse=True)
    group.sort(key=lambda e: e.vali_flag != "1")
    return tuple(group)


class NationalCatalogue:
    def __init__(self, entries: Iterable[CatalogueEntry], version: str = "") -> None:
        self.version = version
        by_code: dict[str, CatalogueEntry] = {}
        for e in entries:
            by_code[e.code] = e  # a repeated code: the later line wins (a corrected item)
        self._by_code = by_code
        self._codes = sorted(by_code)
        groups: dict[str, list[CatalogueEntry]] = {}
        for e in by_code.values():
            groups.setdefault(e.name, []).append(e)
        # names in rank order: shorter first, then by name
        self._names = sorted(groups, key=lambda n: (len(n), n))
        self._groups = [_in_effect_first(groups[n]) for n in self._names]
        self._name_index = {n: i for i, n in enumerate(self._names)}
        self._exact: dict[str, list[int]] = {}
        keyed: list[tuple[str, int]] = []
        # Two substring blobs, each in name-rank order: the names (Chinese) and the pinyin keys
        # (pure ASCII, so CPython stores it one byte a character and str.find runs fastest).
        blobs: dict[bool, list[str]] = {False: [], True: []}
        starts: dict[bool, list[int]] = {False: [], True: []}
        pos = {False: 0, True: 0}
        for i, name in enumerate(self._names):
            lowered = name.lower()
            initials = reading_variants(name, Style.FIRST_LETTER)
            full = reading_variants(name, Style.NORMAL)
            for k in dict.fromkeys([lowered, *initials, *full]):
                self._exact.setdefault(k, []).append(i)
                keyed.append((k, i))
            # Substrings: every reading's initials but only the usual full pinyin (the other
            # full readings multiply the blob tenfold; they still match exactly and as prefixes).
            for ascii_blob, keys in ((False, [lowered]), (True, [*initials, full[0]] if full else initials)):
                seg = _KEYSEP + _KEYSEP.join(keys) + _KEYSEP + _SEP
                starts[ascii_blob].append(pos[ascii_blob])
                blobs[ascii_blob].append(seg)
                pos[ascii_blob] += len(seg)
        keyed.sort()
        self._keys = [k for k, _ in keyed]
        self._key_names = [i for _, i in keyed]
        self._blob = {b: "".join(parts) for b, parts in blobs.items()}
        self._starts = starts

    # ---- loading -------------------------------------------------------------------------

    @classmethod
    def from_text(cls, text: str, version: str = "", source: str = "catalogue") -> NationalCatalogue:
        return cls(parse_rows(text, source), version)

    @classmethod
    def from_zip(cls, data: bytes, version: str = "") -> NationalCatalogue:
        return cls.from_text(zip_text(data), version)

    @classmethod
    def load(cls, path: str | Path, version: str = "") -> NationalCatalogue:
        """A catalogue file: the tab-separated text, or the 1301 zip as downloaded."""
        path = Path(path)
        data = path.read_bytes()
        if data[:2] == b"PK":
            return cls.from_zip(data, version)
        return cls.from_text(data.decode("utf-8"), version, source=path.name)

    # ---- lookups -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._by_code)

    def __iter__(self):
        return iter(self._by_code.values())

    @property
    def names(self) -> list[str]:
        return list(self._names)

    def by_code(self, code: str) -> CatalogueEntry | None:
        return self._by_code.get(code.strip().upper())

    def by_name(self, name: str) -> tuple[CatalogueEntry, ...]:
        """Every item of that exact name, in effect first."""
        i = self._name_index.get(name)
        return () if i is None else self._groups[i]

    def _code_hits(self, q: str, limit: int) -> list[CatalogueEntry]:
        codes = self._codes
        i = bisect_left(codes, q)
        out: list[CatalogueEntry] = []
        while i < len(codes) and len(out) < limit and codes[i].startswith(q):
            out.append(self._by_code[codes[i]])
            i += 1
        return out

    def search_names(self, query: str, limit: int = 20) -> list[tuple[str, tuple[CatalogueEntry, ...]]]:
        """Matching names, best first, each with its items (in effect first)."""
        text = query.strip().lower()
        if not text or limit <= 0:
            return []
        ascii_q = _key(text) if _ASCII_QUERY.match(text.replace(" ", "")) else ""
        q = ascii_q or text.replace(_KEYSEP, "").replace(_SEP, "")
        if not q:
            return []
        found: list[int] = []
        seen: set[int] = set()

        def add(ids: Iterable[int]) -> bool:
            for i in sorted(set(ids) - seen):
                seen.add(i)
                found.append(i)
            return len(found) >= limit

        if add(self._exact.get(q, ())):
            return self._out(found, limit)
        lo = bisect_left(self._keys, q)
        hi = bisect_right(self._keys, q + "\U0010ffff", lo=lo)
        if add(self._key_names[lo:hi]):
            return self._out(found, limit)
        blob, starts = self._blob[q.isascii()], self._starts[q.isascii()]
        at = blob.find(q)
        while at >= 0:
            i = bisect_right(starts, at) - 1
            if i not in seen:
                seen.add(i)
                found.append(i)
                if len(found) >= limit:
                    break
            nxt = starts[i + 1] if i + 1 < len(starts) else len(blob)
            at = blob.find(q, nxt)
        return self._out(found, limit)

    def _out(self, ids: list[int], limit: int) -> list[tuple[str, tuple[CatalogueEntry, ...]]]:
        return [(self._names[i], self._groups[i]) for i in ids[:limit]]

    def search(self, query: str, limit: int = 20, per_name: int | None = 3) -> list[CatalogueEntry]:
        """Matching items, best first: a national code (prefix of 4+ characters) first, then
        by name as ``search_names``, at most ``per_name`` items of one name."""
        out: list[CatalogueEntry] = []
        code_q = query.strip().upper()
        if len(code_q) >= 4 and code_q[0] in "XZ" and code_q.isalnum():
            out = self._code_hits(code_q, limit)
            if len(out) >= limit:
                return out
        have = {e.code for e in out}
        for _, group in self.search_names(query, limit):
            for e in group[: per_name or None]:
                if e.code not in have:
                    out.append(e)
                if len(out) >= limit:
                    return out
        return out

    # ---- the formulary against the catalogue -----------------------------------------------

    def map_formulary(self, drugs: Iterable[Drug], day: date) -> CatalogueMapping:
        """Each formulary drug's catalogue item, with a warning for every drug whose item is
        missing, ended, withdrawn or not yet in effect on ``day``, or whose class differs."""
        entries: dict[str, CatalogueEntry | None] = {}
        warns: list[MappingWarning] = []
        for d in drugs:
            e = self._by_code.get(d.code)
            entries[d.code] = e
            label = f"{d.name}（{d.code}）"
            if e is None:
                warns.append(MappingWarning(d.code, d.name, "missing",
                                            f"{label}在国家医保目录中找不到，不能按医保结算，请报告镇卫生院"))
                continue
            status = e.status_on(day)
            if status != "valid":
                what = {"ended": f"已于 {e.enddate} 失效", "invalid": "已被标为无效",
                        "not_yet": f"{e.begndate} 才生效"}[status]
                alt = [x for x in self.by_name(e.name) if x.code != e.code and x.status_on(day) == "valid"]
                hint = (f"；目录中同名有效条目 {alt[0].code}" + (f" 等 {len(alt)} 条" if len(alt) > 1 else "")
                        if alt else "；目录中没有同名有效条目")
                warns.append(MappingWarning(d.code, d.name, status,
                                            f"{label}的医保目录条目{what}，不能按医保结算{hint}"))
                continue
            if e.chrgitm_lv != d.chrgitm_lv:
                warns.append(MappingWarning(
                    d.code, d.name, "class",
                    f"{label}本卫生室目录为{CLASS_NAMES.get(d.chrgitm_lv, d.chrgitm_lv)}，"
                    f"国家目录为{CLASS_NAMES.get(e.chrgitm_lv, e.chrgitm_lv)}，以国家目录为准"))
            if e.name != d.name:
                warns.append(MappingWarning(d.code, d.name, "name",
                                            f"{label}在国家目录中名为“{e.name}”"))
        return CatalogueMapping(day, entries, tuple(warns))


def zip_text(data: bytes) -> str:
    """The text member of a 1301 catalogue zip."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            members = [i for i in z.infolist() if not i.is_dir()]
            if len(members) != 1:
                raise FormularyDataError("目录文件应为只含一个文本文件的 zip", f"{len(members)} members")
            return z.read(members[0]).decode("utf-8")
    except (zipfile.BadZipFile, UnicodeDecodeError) as e:
        raise FormularyDataError("目录文件不是可读的 zip（UTF-8 文本）", str(e)) from None
