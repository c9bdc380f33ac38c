"""The shipped formulary file and the CSV loader's validation."""

from collections import Counter
from pathlib import Path

import pytest

from formulary import Drug, Formulary, FormularyDataError, load_csv
from formulary.drugs import CODE_RE, COLUMNS, FORM_CODES, parse_csv

DATA = Path(__file__).resolve().parents[2] / "formulary" / "data"
REAL_CODES = {
    "XC08CAX066A011010100002": ("硝苯地平控释片", "30mg"),
    "XJ01CAA040A001010405611": ("阿莫西林片", None),
    "XB01ACA056A012030101554": ("阿司匹林肠溶片", None),
}


@pytest.fixture(scope="module")
def drugs() -> list[Drug]:
    return load_csv(DATA / "formulary_v2.csv")


def test_v2_has_exactly_200_drugs_with_unique_codes_and_names(drugs):
    assert len(drugs) == 200
    assert len({d.code for d in drugs}) == 200
    assert len({d.name for d in drugs}) == 200


def test_v2_keeps_the_three_real_codes_from_the_protocol(drugs):
    by_code = {d.code: d for d in drugs}
    for code, (name, strength) in REAL_CODES.items():
        assert by_code[code].name == name
        if strength:
            assert by_code[code].strength == strength
    assert "拜新同" in by_code["XC08CAX066A011010100002"].trade_names


def test_every_code_has_the_23_char_shape_and_agrees_with_its_columns(drugs):
    for d in drugs:
        m = CODE_RE.match(d.code)
        assert m, d.code
        assert m["atc"] == d.atc
        assert d.kind in "XZ"
        assert FORM_CODES[d.form_code] == d.form, d.name


def test_packaged_default_is_the_same_file(drugs):
    assert Formulary.load_default().drugs == tuple(drugs)


@pytest.mark.parametrize("name", ["formulary_v1.csv", "formulary_v2.csv", "diagnoses.csv", "rules.toml"])
def test_data_files_are_reachable_as_package_resources(name):
    from formulary.packaged import read_packaged

    assert read_packaged(name) == (DATA / name).read_text(encoding="utf-8")


def test_v2_mixes_western_and_patent_medicines(drugs):
    kinds = Counter(d.kind for d in drugs)
    assert kinds["X"] >= 100 and kinds["Z"] >= 50


def test_classes_are_mostly_jia_with_some_yi_and_a_few_bing(drugs):
    classes = Counter(d.chrgitm_lv for d in drugs)
    assert set(classes) == {"01", "02", "03"}
    assert classes["01"] > classes["02"] > classes["03"] >= 1


def test_prices_are_positive_fen_and_a_few_exceed_the_ceiling(drugs):
    assert all(isinstance(d.price_fen, int) and d.price_fen > 0 for d in drugs)
    over = [d for d in drugs if d.price_fen > d.ceiling_fen]
    assert 1 <= len(over) <= 10


def test_duplicate_therapy_groups_exist_for_the_later_rule(drugs):
    groups = Counter(d.atc for d in drugs if d.kind == "X")
    for atc in ("C08CA", "C09CA", "C10AA", "A10BB"):
        assert groups[atc] >= 2, atc


def test_chronic_flag_marks_the_long_prescription_drugs(drugs):
    by_name = {d.name: d for d in drugs}
    for name in ("硝苯地平控释片", "苯磺酸氨氯地平片", "盐酸二甲双胍片", "阿托伐他汀钙片", "阿司匹林肠溶片"):
        assert by_name[name].chronic, name
    for name in ("阿莫西林胶囊", "布洛芬缓释胶囊", "板蓝根颗粒"):
        assert not by_name[name].chronic, name


def test_every_drug_lasts_at_least_a_day_at_its_maximum_dose(drugs):
    for d in drugs:
        assert d.max_daily >= 1 and d.std_days >= 1


def test_restrictions_are_few_and_well_formed(drugs):
    restricted = [d for d in drugs if d.restrict_dx or d.sex or d.min_age or d.max_age is not None]
    assert 10 <= len(restricted) <= 60
    assert {d.sex for d in drugs} == {None, "1", "2"}


# --- validation -------------------------------------------------------------------------

HEADER = ",".join(COLUMNS)
GOOD = "XC08CAX066A011010100002,硝苯地平控释片,拜新同,控释片,30mg,盒,7,片,3170,3650,01,C08CA,1,7,1,,,,"


def _with(**changes: str) -> str:
    cells = dict(zip(COLUMNS, GOOD.split(",")))
    cells.update(changes)
    return ",".join(cells[c] for c in COLUMNS)


def test_a_good_row_parses_into_typed_fields():
    (d,) = parse_csv(f"{HEADER}\n{GOOD}\n")
    assert d.pack == 7 and d.price_fen == 3170 and d.chronic is True
    assert d.trade_names == ("拜新同",) and d.restrict_dx == ()
    assert d.min_age is None and d.sex is None and d.chrgitm_lv == "01"
    assert d.generic_id == "X066" and d.form_code == "A011"


def test_a_bom_and_semicolon_lists_are_accepted():
    row = _with(trade_names="甲;乙", restrict_dx="I10;E11.9", min_age="18", sex="2")
    (d,) = parse_csv(f"\ufeff{HEADER}\n{row}\n")
    assert d.trade_names == ("甲", "乙") and d.restrict_dx == ("I10", "E11.9")
    assert d.min_age == 18 and d.sex == "2"


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"code": "XC08CAX066A01101010000"}, "23 位"),
        ({"code": "YC08CAX066A011010100002"}, "格式不对"),
        ({"atc": "C08CB"}, "不一致"),
        ({"pack": "7.5"}, "pack 应为整数"),
        ({"price_fen": "31.70"}, "price_fen 应为整数"),
        ({"pack": "0"}, "pack 不能小于 1"),
        ({"class": "04"}, "class"),
        ({"chronic": "yes"}, "chronic"),
        ({"restrict_dx": "高血压"}, "ICD-10"),
        ({"sex": "F"}, "sex"),
        ({"min_age": "18", "max_age": "14"}, "大于"),
        ({"name": ""}, "名称"),
    ],
)
def test_a_bad_row_raises_an_error_naming_its_line(changes, words):
    text = f"{HEADER}\n{GOOD}\n{_with(**changes)}\n"
    with pytest.raises(FormularyDataError) as e:
        parse_csv(text, source="v9.csv")
    assert "v9.csv 第 3 行" in e.value.message
    assert words in e.value.message
    assert "v9.csv:3" in e.value.detail


def test_a_duplicate_code_names_both_lines():
    with pytest.raises(FormularyDataError) as e:
        parse_csv(f"{HEADER}\n{GOOD}\n{GOOD}\n")
    assert "第 3 行" in e.value.message and "第 2 行重复" in e.value.message


def test_a_missing_column_is_named():
    header = HEADER.replace(",ceiling_fen", "")
    with pytest.raises(FormularyDataError, match="ceiling_fen"):
        parse_csv(f"{header}\n{GOOD}\n")


def test_an_empty_file_is_an_error():
    with pytest.raises(FormularyDataError):
        parse_csv(f"{HEADER}\n")


def test_load_csv_names_the_file(tmp_path):
    path = tmp_path / "formulary_v3.csv"
    path.write_text(f"{HEADER}\n{_with(**{'class': '9'})}\n", encoding="utf-8")
    with pytest.raises(FormularyDataError, match="formulary_v3.csv 第 2 行"):
        load_csv(path)
