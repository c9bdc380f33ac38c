"""Drug search at the counter (pinyin initials, full pinyin, Chinese, code, trade name) and resolve."""

import time

import pytest

from formulary import DrugLookupError, Formulary

NIFEDIPINE_CR = "XC08CAX066A011010100002"


@pytest.fixture(scope="module")
def fm() -> Formulary:
    return Formulary.load_default()


def names(drugs):
    return [d.name for d in drugs]


def test_xbdp_finds_nifedipine_controlled_release_first(fm):
    assert fm.search("xbdp")[0].code == NIFEDIPINE_CR


def test_initials_are_case_and_space_insensitive(fm):
    assert fm.search("  XBDP ")[0].code == NIFEDIPINE_CR


def test_full_pinyin_and_its_prefix_find_the_drug(fm):
    assert fm.search("xiaobendiping")[0].code == NIFEDIPINE_CR
    assert "硝苯地平控释片" in names(fm.search("xiaobendipingkong"))
    assert names(fm.search("lianhuaqingwen")) == ["连花清瘟胶囊"]


def test_chinese_substring_finds_every_drug_containing_it(fm):
    found = names(fm.search("地平", limit=None))
    assert {"硝苯地平控释片", "苯磺酸氨氯地平片", "非洛地平缓释片", "左旋氨氯地平片"} <= set(found)
    assert all("地平" in n for n in found)


def test_initials_in_the_middle_of_a_name_match_as_substring(fm):
    # 苯磺酸氨氯地平片: b h s a l d p p -> "aldp" is inside
    assert "苯磺酸氨氯地平片" in names(fm.search("aldp"))


def test_code_prefix_lists_the_atc_group_and_full_code_is_exact(fm):
    group = fm.search("XC08CA", limit=None)
    assert len(group) >= 4 and all(d.atc == "C08CA" for d in group)
    assert fm.search(NIFEDIPINE_CR.lower())[0].code == NIFEDIPINE_CR


def test_trade_name_and_its_initials_find_the_generic(fm):
    assert fm.search("拜新同")[0].code == NIFEDIPINE_CR
    assert fm.search("bxt")[0].code == NIFEDIPINE_CR
    assert names(fm.search("思密达")) == ["蒙脱石散"]


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("zglp", "重感灵片"),  # 重 zhong
        ("cglp", "重感灵片"),  # 重 chong
        ("xjs", "行军散"),  # 行 xing
        ("hjs", "行军散"),  # 行 hang
        ("ffdsdw", "复方丹参滴丸"),  # 参 shen
        ("ffdcdw", "复方丹参滴丸"),  # 参 can
        ("lwdhw", "六味地黄丸"),  # 地 di (de has the same initial)
        ("chongganling", "重感灵片"),
    ],
)
def test_polyphonic_characters_match_either_reading(fm, query, name):
    assert name in names(fm.search(query))


def test_exact_name_comes_before_prefix_matches(fm):
    assert fm.search("逍遥丸")[0].name == "逍遥丸"
    assert names(fm.search("阿莫西林片"))[0] == "阿莫西林片"


def test_prefix_matches_come_before_substring_matches_whatever_the_name_order(fm):
    found = names(fm.search("硝酸", limit=None))
    # 单硝酸异山梨酯缓释片 sorts before 硝... by name but only contains "硝酸"
    assert found.index("硝酸甘油片") < found.index("单硝酸异山梨酯缓释片")
    assert all(n.startswith("硝酸") for n in found[:3])


def test_ties_are_ordered_by_name(fm):
    prefix = [d for d in fm.search("阿莫西林", limit=None)]
    assert names(prefix) == sorted(names(prefix))


def test_limit_caps_results_and_empty_query_finds_nothing(fm):
    assert len(fm.search("p", limit=5)) == 5
    assert len(fm.search("p")) == 20
    assert len(fm.search("p", limit=None)) > 20
    assert fm.search("") == [] and fm.search("   ") == []


def test_nonsense_finds_nothing(fm):
    assert fm.search("qqqqzzz") == []
    assert fm.search("不存在的药") == []


def test_a_query_takes_under_a_millisecond(fm):
    queries = ["xbdp", "xiaobendiping", "地平", "XC08CA", "拜新同", "a", "lhqw", "zglp"]
    rounds = 50
    start = time.perf_counter()
    for _ in range(rounds):
        for q in queries:
            fm.search(q)
    per_query = (time.perf_counter() - start) / (rounds * len(queries))
    assert per_query < 0.001, f"{per_query * 1e3:.3f} ms per query"


def test_by_code_ignores_case_and_returns_none_when_absent(fm):
    assert fm.by_code(NIFEDIPINE_CR.lower()).name == "硝苯地平控释片"
    assert fm.by_code("XC08CAX066A011010199999") is None
    assert NIFEDIPINE_CR in fm and "nope" not in fm
    assert len(fm) == 200


# --- resolve ------------------------------------------------------------------------------


def test_resolve_accepts_a_national_code(fm):
    assert fm.resolve(" xc08cax066a011010100002 ").name == "硝苯地平控释片"


def test_resolve_accepts_an_unambiguous_term(fm):
    assert fm.resolve("xbdpksp").code == NIFEDIPINE_CR
    assert fm.resolve("拜新同").code == NIFEDIPINE_CR
    assert fm.resolve("lhqw").name == "连花清瘟胶囊"


def test_resolve_takes_the_single_exact_name_among_several_matches(fm):
    assert len(fm.search("逍遥丸")) == 2
    assert fm.resolve("逍遥丸").name == "逍遥丸"
    assert fm.resolve("氢氯噻嗪片").name == "氢氯噻嗪片"


def test_resolve_of_xbdp_is_nifedipine_the_counter_and_demo_rely_on_it(fm):
    assert fm.resolve("xbdp").code == NIFEDIPINE_CR


def test_resolve_lists_the_candidates_when_ambiguous(fm):
    with pytest.raises(DrugLookupError) as e:
        fm.resolve("阿莫西林")
    assert e.value.message == (
        "“阿莫西林”对应多种药品：阿莫西林克拉维酸钾片、阿莫西林片、阿莫西林胶囊，请写得更具体"
    )
    assert "XJ01CAA040A001010405611" in e.value.detail


def test_resolve_with_many_candidates_lists_a_few_and_the_count(fm):
    with pytest.raises(DrugLookupError) as e:
        fm.resolve("p")
    assert "等" in e.value.message and "种，请写得更具体" in e.value.message


def test_a_shared_trade_name_is_ambiguous(fm):
    with pytest.raises(DrugLookupError, match="盐酸氨溴索"):
        fm.resolve("沐舒坦")


def test_resolve_explains_what_to_do_when_nothing_matches(fm):
    with pytest.raises(DrugLookupError) as e:
        fm.resolve("阿莫西林颗粒")
    assert e.value.message == "找不到药品“阿莫西林颗粒”，请换个写法或用拼音首字母搜索"


def test_resolve_of_an_unknown_code_says_it_is_not_on_the_formulary(fm):
    with pytest.raises(DrugLookupError, match="不在本卫生室医保目录内"):
        fm.resolve("XC08CAX066A011010199999")


def test_resolve_of_an_empty_term_asks_for_input(fm):
    with pytest.raises(DrugLookupError, match="请输入"):
        fm.resolve("  ")
