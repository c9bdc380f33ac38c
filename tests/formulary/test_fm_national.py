"""The national catalogue on the clinic's side: loading the 1301 file, search over ~100,000 items
(pinyin initials with polyphonic characters, Chinese, code prefix), and the formulary mapped to it.

The catalogue is the simulator's own generated file (the bytes 9102 would send), so these tests
read exactly what a clinic receives; the network path itself is tested in
tests/mock_network/test_sim_catalogue.py and tests/e2e/test_e2e_catalogue.py.
"""

from datetime import date

import pytest

from formulary import Formulary
from formulary.errors import FormularyDataError
from formulary.national import (
    COLUMNS,
    CatalogueEntry,
    NationalCatalogue,
    parse_rows,
    rows_text,
)
from settlement.mock_network import national_catalogue as nc

DAY = date(2026, 11, 30)


@pytest.fixture(scope="module")
def cat() -> NationalCatalogue:
    return NationalCatalogue.from_zip(nc.zip_file(), version=nc.VERSION)


@pytest.fixture(scope="module")
def formulary() -> Formulary:
    return Formulary.load_default()


def test_the_catalogue_file_has_at_least_100000_items_and_the_clients_columns(cat):
    assert len(cat) >= 100_000
    assert COLUMNS == nc.COLUMNS  # client and simulator agree on the file's columns
    e = cat.by_code("XC08CAX066A011010100002")
    assert e == CatalogueEntry("XC08CAX066A011010100002", "硝苯地平控释片", "09", "01", "0",
                               e.begndate, "2099-12-31", "1")


def test_rows_text_round_trips_and_a_short_row_is_refused():
    rows = [CatalogueEntry("XC08CAX066A011010100002", "硝苯地平控释片", "09", "01", "0",
                           "2020-01-01", "2099-12-31", "1")]
    assert parse_rows(rows_text(rows)) == rows
    with pytest.raises(FormularyDataError) as e:
        parse_rows("XC08CAX066A011010100002\t硝苯地平控释片\n", "national.tsv")
    assert "第 1 行应有 8 列" in e.value.message


@pytest.mark.parametrize("query, name", [
    ("zljd", "重楼解毒"),  # 重 read zhong
    ("cljd", "重楼解毒"),  # 重 read chong
    ("xqhx", "行气活血"),  # 行 read xing
    ("hqhx", "行气活血"),  # 行 read hang
    ("slbz", "参苓白术"),  # 参 shen
    ("clbz", "参苓白术"),  # 参 can
    ("cctzk", "长春藤止咳"),  # 长 chang
    ("zctzk", "长春藤止咳"),  # 长 zhang
])
def test_catalogue_search_finds_polyphonic_initials_under_every_reading(cat, query, name):
    hits = cat.search(query, limit=10)
    assert hits and all(h.name.startswith(name) for h in hits[:3]), [h.name for h in hits]


def test_catalogue_search_ranks_exact_then_prefix_shorter_names_first(cat):
    names = [n for n, _ in cat.search_names("xbdp", limit=5)]
    assert names[0] == "硝苯地平片"  # the shortest name with these initials
    assert "硝苯地平控释片" in [n for n, _ in cat.search_names("xbdp", limit=50)]
    assert cat.search_names("硝苯地平控释片", limit=1)[0][0] == "硝苯地平控释片"


def test_catalogue_search_by_chinese_substring_and_full_pinyin(cat):
    assert all("地平" in e.name for e in cat.search("地平", limit=30))
    assert cat.search("xiaobendiping", limit=1)[0].name.startswith("硝苯地平")


def test_catalogue_search_by_code_prefix_lists_that_group(cat):
    hits = cat.search("XC08CA", limit=15)
    assert len(hits) == 15 and all(e.code.startswith("XC08CA") for e in hits)
    assert cat.search("XC08CAX066A011010100002", limit=1)[0].name == "硝苯地平控释片"


def test_catalogue_search_lists_items_in_effect_before_ended_ones(cat):
    ended = next(e for e in cat if e.enddate < DAY.isoformat() and e.vali_flag == "1")
    group = cat.by_name(ended.name)
    statuses = [e.status_on(DAY) for e in group]
    assert statuses.index("ended") > statuses.index("valid")


def test_catalogue_search_of_nothing_matching_is_empty(cat):
    assert cat.search("qqqqqq") == [] and cat.search("  ") == []


def test_mapping_finds_every_formulary_drug_but_the_missing_ones(cat, formulary):
    m = cat.map_formulary(formulary, DAY)
    rows = list(formulary)
    missing = {rows[i].code for i in nc.MISSING_FORMULARY}
    assert {c for c, e in m.entries.items() if e is None} == missing
    assert m.mapped == 200 - len(missing)
    assert {w.code for w in m.warnings if w.kind == "missing"} == missing


def test_mapping_warns_about_expired_entries_and_names_the_successor(cat, formulary):
    rows = list(formulary)
    m = cat.map_formulary(formulary, DAY)
    ended = {w.code: w for w in m.warnings if w.kind == "ended"}
    assert set(ended) == {rows[i].code for i in nc.EXPIRED_FORMULARY}
    w = ended[rows[nc.EXPIRED_FORMULARY[0]].code]
    assert "已于 2025-06-30 失效" in w.message and "同名有效条目" in w.message
    assert w.name in w.message and w.code in w.message


def test_an_entry_in_effect_on_the_day_gives_no_warning(cat, formulary):
    before = cat.map_formulary(formulary, date(2025, 6, 30))  # the last day of the ended entries
    assert not [w for w in before.warnings if w.kind == "ended"]


def test_mapping_warns_when_the_class_differs_from_the_catalogue(formulary):
    d = formulary.by_code("XC08CAX066A011010100002")
    cat = NationalCatalogue([CatalogueEntry(d.code, d.name, "09", "02", "0", "2020-01-01", "2099-12-31", "1")])
    m = cat.map_formulary([d], DAY)
    assert [w.kind for w in m.warnings] == ["class"]
    assert "本卫生室目录为甲类，国家目录为乙类" in m.warnings[0].message


def test_a_withdrawn_or_not_yet_valid_entry_is_warned(formulary):
    a, b = formulary.drugs[:2]
    cat = NationalCatalogue([
        CatalogueEntry(a.code, a.name, "09", a.chrgitm_lv, "0", "2020-01-01", "2099-12-31", "0"),
        CatalogueEntry(b.code, b.name, "09", b.chrgitm_lv, "0", "2027-01-01", "2099-12-31", "1"),
    ])
    kinds = {w.code: (w.kind, w.message) for w in cat.map_formulary([a, b], DAY).warnings}
    assert kinds[a.code][0] == "invalid" and "已被标为无效" in kinds[a.code][1]
    assert kinds[b.code][0] == "not_yet" and "2027-01-01 才生效" in kinds[b.code][1]
