"""The diagnosis list and its pinyin search."""

import pytest

from formulary import FormularyDataError
from formulary.diagnoses import DiagnosisList, parse_diagnoses
from formulary.rulebook import default_rulebook


@pytest.fixture(scope="module")
def dx() -> DiagnosisList:
    return DiagnosisList.load_default()


def test_list_holds_the_common_village_diagnoses(dx):
    assert 70 <= len(dx) <= 110
    assert dx.by_code("I10").name == "原发性高血压"
    assert dx.by_code("e11.9").name == "2型糖尿病"
    assert dx.by_code("J06.9").name == "急性上呼吸道感染"


def test_every_chronic_rule_prefix_has_a_diagnosis_to_pick(dx):
    codes = [d.code for d in dx]
    for prefix in default_rulebook()["R003"]["chronic_dx"]:
        if prefix in ("I12", "I13", "I15", "E14"):  # rare at a village clinic
            continue
        assert any(c.startswith(prefix) for c in codes), prefix


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("gxy", "I10"),  # alias 高血压
        ("yfxgxy", "I10"),
        ("gaoxueya", "I10"),
        ("高血压", "I10"),
        ("i10", "I10"),
        ("j06", "J06.9"),
        ("gm", "J00"),  # 感冒: whole initials of an alias beat longer words starting gm
        ("tnb", "E11.9"),
        ("腰痛", "M54.5"),
    ],
)
def test_search_finds_by_initials_pinyin_chinese_and_code(dx, query, code):
    assert dx.search(query)[0].code == code


def test_nonsense_finds_no_diagnosis(dx):
    assert dx.search("qqxz") == [] and dx.search("") == []


def test_name_of_falls_back_to_the_category(dx):
    assert dx.name_of("I10.x00") == "原发性高血压"
    assert dx.name_of("E11") == "2型糖尿病"
    assert dx.name_of("Z99.9") == "Z99.9"


@pytest.mark.parametrize(
    ("row", "words"),
    [("X1,坏编码,", "不是 ICD-10"), ("I10,,", "缺少诊断名称"), ("I10,高血压,", "与第 2 行重复")],
)
def test_bad_rows_are_refused_naming_the_line(row, words):
    with pytest.raises(FormularyDataError) as e:
        parse_diagnoses(f"code,name,aliases\nI10,原发性高血压,\n{row}\n", "dx.csv")
    assert "dx.csv 第 3 行" in e.value.message and words in e.value.message
