"""Properties over the whole formulary and over arbitrary input."""

from hypothesis import given, settings
from hypothesis import strategies as st
from pypinyin import Style, lazy_pinyin

from formulary import DrugLookupError, Formulary, RxLine, check
from formulary.rules import rule_ids

FM = Formulary.load_default()
CODES = [d.code for d in FM]


def test_every_drug_is_first_when_searched_by_its_own_name_and_resolves_by_name_and_code():
    for d in FM:
        assert FM.search(d.name)[0] == d, d.name
        assert FM.resolve(d.name) == d
        assert FM.resolve(d.code) == d


def test_every_drug_is_found_by_its_initials():
    for d in FM:
        initials = "".join(p for p in lazy_pinyin(d.name, style=Style.FIRST_LETTER) if p.isascii()).lower()
        initials = "".join(ch for ch in initials if ch.isalnum())
        assert d in FM.search(initials, limit=None), (d.name, initials)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=12), st.integers(min_value=1, max_value=30))
def test_search_never_fails_and_respects_the_limit(query, limit):
    found = FM.search(query, limit=limit)
    assert len(found) <= limit
    assert len(set(d.code for d in found)) == len(found)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=12))
def test_resolve_returns_a_drug_or_raises_a_lookup_error_with_a_chinese_message(term):
    try:
        assert FM.resolve(term) in FM.drugs
    except DrugLookupError as e:
        assert any("\u4e00" <= ch <= "\u9fff" for ch in e.message)


line = st.builds(RxLine, st.sampled_from(CODES), st.integers(1, 10), st.integers(1, 40))


@settings(max_examples=200, deadline=None)
@given(st.lists(line, max_size=7), st.booleans(), st.sampled_from([(), ("I10",), ("J06.9",)]))
def test_check_judges_every_line_with_every_rule(lines, emergency, dx):
    verdicts = check(lines, FM, emergency=emergency, diagnoses=dx, age=40, sex="1")
    assert {v.outcome for v in verdicts} <= {"pass", "warn", "block"}
    assert all(v.message for v in verdicts)
    for rule_id in rule_ids():
        mine = [v for v in verdicts if v.rule_id == rule_id]
        if rule_id in ("R002", "R005"):
            assert mine and all(v.line is None or 0 <= v.line < len(lines) for v in mine)
        else:
            assert sorted(v.line for v in mine) == list(range(len(lines)))
    for i, ln in enumerate(lines):
        (days,) = [v for v in verdicts if v.rule_id == "R003" and v.line == i]
        drug = FM.by_code(ln.code)
        limit = 3 if emergency else (28 if drug.chronic and dx == ("I10",) else 7)
        assert (days.outcome == "block") == (ln.days > limit)
