"""Prescription rules R001–R003: verdicts, boundaries and explained messages."""

import pytest

from formulary import (
    Formulary,
    FormularyDataError,
    RxLine,
    Verdict,
    blocking,
    check,
    default_rulebook,
    warnings,
)
from formulary.packaged import read_packaged
from formulary.rulebook import parse_rulebook
from formulary.rules import rule_ids

FM = Formulary.load_default()
CHRONIC = FM.resolve("硝苯地平控释片").code  # chronic: may go on a long prescription
ACUTE = FM.resolve("阿莫西林胶囊").code  # not chronic
OFF_LIST = "XC08CAX066A011010199999"
SIX = [FM.resolve(n).code for n in ("板蓝根颗粒", "布洛芬缓释胶囊", "蒙脱石散", "氯雷他定片", "复方甘草片", "维生素C片")]


def only(verdicts, rule_id, line=...):
    found = [v for v in verdicts if v.rule_id == rule_id and (line is ... or v.line == line)]
    assert len(found) == 1, found
    return found[0]


# --- R003 days' supply ------------------------------------------------------------------

R003_CASES = [
    # (id, code, days, emergency, diagnoses, outcome, words in message)
    ("acute 7 days is fine", ACUTE, 7, False, (), "pass", "未超过普通处方的 7 天"),
    ("acute 8 days blocks", ACUTE, 8, False, (), "block", "普通处方最多 7 天，本处方 8 天"),
    ("chronic drug 7 days without dx", CHRONIC, 7, False, (), "pass", "7 天"),
    ("chronic drug 14 days without dx", CHRONIC, 14, False, (), "block", "最多 7 天，本处方 14 天"),
    ("chronic 28 days with I10", CHRONIC, 28, False, ("I10",), "pass", "28 天"),
    ("chronic 29 days with I10", CHRONIC, 29, False, ("I10",), "block", "长期处方（慢性病诊断 I10）最多 28 天，本处方 29 天"),
    ("chronic 28 days with E11 subcode", CHRONIC, 28, False, ("J06.9", "e11.900"), "pass", "28 天"),
    ("chronic 28 days without dx", CHRONIC, 28, False, (), "block", "最多 7 天，本处方 28 天"),
    ("chronic 28 days, unrelated dx", CHRONIC, 28, False, ("J06.9",), "block", "最多 7 天"),
    ("acute drug 8 days even with I10", ACUTE, 8, False, ("I10",), "block", "该药不能开长期处方"),
    ("emergency 3 days", ACUTE, 3, True, (), "pass", "急诊处方的 3 天"),
    ("emergency 4 days", ACUTE, 4, True, (), "block", "急诊处方最多 3 天，本处方 4 天"),
    ("emergency wins over long rx", CHRONIC, 4, True, ("I10",), "block", "急诊处方最多 3 天，本处方 4 天"),
    ("one day", ACUTE, 1, False, (), "pass", "1 天"),
]


@pytest.mark.parametrize(
    ("code", "days", "emergency", "dx", "outcome", "words"),
    [c[1:] for c in R003_CASES],
    ids=[c[0] for c in R003_CASES],
)
def test_r003_days_supply(code, days, emergency, dx, outcome, words):
    v = only(check([RxLine(code, 1, days)], FM, emergency=emergency, diagnoses=dx), "R003", 0)
    assert (v.outcome, v.line, v.rule_version) == (outcome, 0, 1)
    assert words in v.message


def test_r003_missing_chronic_dx_message_says_what_to_record():
    v = only(check([RxLine(CHRONIC, 2, 14)], FM), "R003")
    assert v.message.startswith("硝苯地平控释片：")
    assert "慢性病诊断" in v.message and "I10" in v.message


# --- R002 drug count --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "outcome", "message"),
    [
        (1, "pass", "本处方 1 种药，未超过 5 种"),
        (5, "pass", "本处方 5 种药，未超过 5 种"),
        (6, "block", "一张处方最多 5 种药，本处方 6 种"),
    ],
)
def test_r002_at_most_five_drugs(count, outcome, message):
    v = only(check([RxLine(c, 1, 3) for c in SIX[:count]], FM), "R002")
    assert (v.outcome, v.message, v.line) == (outcome, message, None)


def test_r002_counts_a_drug_listed_twice_once():
    lines = [RxLine(c, 1, 3) for c in SIX[:5]] + [RxLine(SIX[0].lower(), 1, 3)]
    assert only(check(lines, FM), "R002").outcome == "pass"


def test_r002_counts_drugs_off_the_formulary_too():
    lines = [RxLine(c, 1, 3) for c in SIX[:5]] + [RxLine(OFF_LIST, 1, 3)]
    assert only(check(lines, FM), "R002").message == "一张处方最多 5 种药，本处方 6 种"


# --- R001 on the formulary --------------------------------------------------------------


def test_r001_blocks_a_drug_off_the_formulary_and_names_its_code():
    verdicts = check([RxLine(ACUTE, 1, 3), RxLine(OFF_LIST, 1, 3)], FM)
    assert only(verdicts, "R001", 0).outcome == "pass"
    off = only(verdicts, "R001", 1)
    assert off.outcome == "block"
    assert off.message == f"药品 {OFF_LIST} 不在本卫生室医保目录内，不能用医保结算"
    # other line rules skip a drug they know nothing about
    assert [v.line for v in verdicts if v.rule_id == "R003"] == [0]


# --- check as a whole ---------------------------------------------------------------------


def test_a_clean_prescription_gets_a_pass_for_every_rule_with_a_reason():
    verdicts = check([RxLine(ACUTE, 1, 4), RxLine(CHRONIC, 1, 7)], FM)
    assert {v.rule_id for v in verdicts} == set(rule_ids())
    assert all(isinstance(v, Verdict) and v.outcome == "pass" and v.message for v in verdicts)
    assert blocking(verdicts) == [] and warnings(verdicts) == []


def test_verdicts_come_in_rule_then_line_order():
    verdicts = check([RxLine(ACUTE, 1, 4), RxLine(CHRONIC, 1, 7)], FM)
    keys = [(v.rule_id, -1 if v.line is None else v.line) for v in verdicts]
    assert keys == sorted(keys)


def test_blocking_and_warnings_pick_by_outcome():
    vs = [
        Verdict("R001", 1, "pass", "a", 0),
        Verdict("R002", 1, "block", "b", None),
        Verdict("R003", 1, "warn", "c", 0),
    ]
    assert blocking(vs) == [vs[1]] and warnings(vs) == [vs[2]]


def test_an_empty_prescription_passes():
    assert blocking(check([], FM)) == []


@pytest.mark.parametrize(("qty", "days"), [(0, 7), (1, 0), (-1, 3)])
def test_a_line_needs_positive_quantity_and_days(qty, days):
    with pytest.raises(ValueError):
        RxLine(ACUTE, qty, days)


# --- rules.toml ---------------------------------------------------------------------------


def test_the_packaged_rulebook_holds_the_parameters():
    book = default_rulebook()
    assert book["R002"]["max_drugs"] == 5
    assert (book["R003"]["max_days"], book["R003"]["max_days_emergency"], book["R003"]["max_days_long"]) == (7, 3, 28)
    assert "I10" in book["R003"]["chronic_dx"] and "E11" in book["R003"]["chronic_dx"]
    assert {book[r].severity for r in ("R001", "R002", "R003")} == {"block"}


BOOK = """
[R001]
version = 1
severity = "block"
[R002]
version = 3
severity = "warn"
max_drugs = 2
[R003]
version = 2
severity = "block"
max_days = 7
max_days_emergency = 3
max_days_long = 84
chronic_dx = ["I10"]
""" + "[R004]" + read_packaged("rules.toml").split("[R004]", 1)[1]  # the later rules as shipped


def test_parameters_severity_and_version_come_from_the_rulebook():
    book = parse_rulebook(BOOK, "test.toml")
    verdicts = check([RxLine(CHRONIC, 12, 84), RxLine(ACUTE, 1, 3), RxLine(SIX[0], 1, 3)], FM,
                     diagnoses=["I10"], rulebook=book)
    count = only(verdicts, "R002")
    assert (count.outcome, count.rule_version, count.message) == ("warn", 3, "一张处方最多 2 种药，本处方 3 种")
    assert warnings(verdicts) == [count]
    long_rx = only(verdicts, "R003", 0)
    assert (long_rx.outcome, long_rx.rule_version) == ("pass", 2)


def test_a_rulebook_missing_a_parameter_is_refused_with_its_name():
    book = parse_rulebook(BOOK.replace("max_days_long = 84\n", ""), "test.toml")
    with pytest.raises(FormularyDataError, match="R003 缺少参数：max_days_long"):
        check([RxLine(ACUTE, 1, 3)], FM, rulebook=book)


def test_a_rulebook_missing_a_rule_is_refused():
    book = parse_rulebook(BOOK.split("[R003]")[0] + "[R004]" + BOOK.split("[R004]")[1], "test.toml")
    with pytest.raises(FormularyDataError, match="缺少规则 R003"):
        check([RxLine(ACUTE, 1, 3)], FM, rulebook=book)


@pytest.mark.parametrize(
    "bad",
    ['[R001]\nversion = 1\nseverity = "stop"\n', '[R001]\nversion = 0\nseverity = "block"\n', "[R001\n"],
)
def test_a_malformed_rulebook_is_refused(bad):
    with pytest.raises(FormularyDataError):
        parse_rulebook(bad, "bad.toml")
