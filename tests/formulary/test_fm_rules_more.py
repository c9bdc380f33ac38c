"""Prescription rules R004–R009: daily dose, duplicates, repeats, restrictions, price, over-supply."""

from datetime import date

import pytest

from formulary import Formulary, RxLine, blocking, check, warnings
from formulary.rules import PriorSupply

FM = Formulary.load_default()
R = FM.resolve
NIFEDIPINE = R("硝苯地平控释片")  # 7 片/盒, max 1 片/日, std 7 days, C08CA
AMLODIPINE = R("苯磺酸氨氯地平片")  # 28 片/盒, max 2 片/日, C08CA
SMECTITE = R("蒙脱石散")  # 10 袋/盒, max 3 袋/日
LEVOFLOXACIN = R("左氧氟沙星片")  # min_age 18
CLOPIDOGREL = R("硫酸氢氯吡格雷片")  # restrict_dx I20;I21;I25;I63;I70
TAMSULOSIN = R("盐酸坦索罗辛缓释胶囊")  # men only, N40
WUJI = R("乌鸡白凤丸")  # women only
CHILD_COLD = R("小儿氨酚黄那敏颗粒")  # max_age 13
LOQUAT = R("蜜炼川贝枇杷膏")  # price above ceiling
CALCIUM = R("碳酸钙D3片")  # 丙类
TODAY = date(2026, 11, 30)


def verdict(lines, rule_id, line=0, **kw):
    found = [v for v in check(lines, FM, **kw) if v.rule_id == rule_id and v.line == line]
    assert len(found) == 1, found
    return found[0]


# --- R004 daily dose ----------------------------------------------------------------------

R004_CASES = [
    # (id, drug, qty, days, outcome, words)
    ("1 box of 7 for 7 days is 1 a day", NIFEDIPINE, 1, 7, "pass", "合每日 1片，未超过每日最多 1片"),
    ("2 boxes of 7 for 7 days is 2 a day", NIFEDIPINE, 2, 7, "block", "每日最多 1片，本处方 2 盒×7片 用 7 天，合每日 2片"),
    ("2 boxes of 7 for 14 days", NIFEDIPINE, 2, 14, "pass", "合每日 1片"),
    ("2 boxes of 7 for 13 days: one box short", NIFEDIPINE, 2, 13, "pass", "按整盒发药"),
    ("whole box for fewer days", SMECTITE, 1, 3, "pass", "按整盒发药"),
    ("2 boxes of 10 for 3 days at 3 a day", SMECTITE, 2, 3, "block", "合每日 6.7袋"),
    ("2 boxes of 10 for 4 days: 9 < 12", SMECTITE, 2, 4, "pass", "按整盒发药"),
    ("3 boxes of 10 for 7 days: exactly 30 > 21 with 20 < 21", SMECTITE, 3, 7, "pass", "按整盒发药"),
    ("4 boxes of 10 for 7 days", SMECTITE, 4, 7, "block", "合每日 5.7袋"),
]


@pytest.mark.parametrize(
    ("drug", "qty", "days", "outcome", "words"), [c[1:] for c in R004_CASES], ids=[c[0] for c in R004_CASES]
)
def test_r004_daily_dose_against_label_maximum(drug, qty, days, outcome, words):
    v = verdict([RxLine(drug.code, qty, days)], "R004", diagnoses=["I10"])
    assert v.outcome == outcome and words in v.message


# --- R005 duplicate therapy ---------------------------------------------------------------


def test_r005_two_drugs_of_one_atc_group_warn_on_the_second_line():
    lines = [RxLine(NIFEDIPINE.code, 1, 7), RxLine(SMECTITE.code, 1, 3), RxLine(AMLODIPINE.code, 1, 7)]
    verdicts = [v for v in check(lines, FM) if v.rule_id == "R005"]
    assert len(verdicts) == 1
    v = verdicts[0]
    assert (v.outcome, v.line) == ("warn", 2)
    assert v.message == "硝苯地平控释片、苯磺酸氨氯地平片 同属一类药（C08CA），重复用药"


def test_r005_passes_once_for_the_whole_prescription_without_duplicates():
    verdicts = [v for v in check([RxLine(NIFEDIPINE.code, 1, 7), RxLine(SMECTITE.code, 1, 3)], FM)
                if v.rule_id == "R005"]
    assert [(v.outcome, v.line) for v in verdicts] == [("pass", None)]


def test_r005_two_paracetamol_cold_remedies_are_duplicates():
    lines = [RxLine(R("对乙酰氨基酚片").code, 1, 3), RxLine(R("复方氨酚烷胺片").code, 1, 3)]
    assert verdict(lines, "R005", line=1).outcome == "warn"


# --- R006 repeat prescribing --------------------------------------------------------------

R006_CASES = [
    # (id, dispensed days ago, days supplied, outcome)
    ("supply used up", 28, 28, "pass"),
    ("3 days early is tolerated", 25, 28, "pass"),
    ("4 days early is flagged", 24, 28, "warn"),
    ("yesterday's 7 days", 1, 7, "warn"),
    ("long ago", 90, 28, "pass"),
]


@pytest.mark.parametrize(("ago", "days", "outcome"), [c[1:] for c in R006_CASES], ids=[c[0] for c in R006_CASES])
def test_r006_same_ingredient_while_the_last_supply_lasts(ago, days, outcome):
    history = [PriorSupply(NIFEDIPINE.code, date.fromordinal(TODAY.toordinal() - ago), days)]
    v = verdict([RxLine(NIFEDIPINE.code, 4, 28)], "R006", diagnoses=["I10"], history=history, today=TODAY)
    assert v.outcome == outcome


def test_r006_message_names_the_dates_and_days_left():
    history = [PriorSupply(NIFEDIPINE.code, date(2026, 11, 20), 28)]
    v = verdict([RxLine(NIFEDIPINE.code, 4, 28)], "R006", diagnoses=["I10"], history=history, today=TODAY)
    assert v.message == "硝苯地平控释片：11 月 20 日已开 28 天，可用到 12 月 17 日，还剩 18 天，提前取药最多 3 天"


def test_r006_matches_the_ingredient_across_forms():
    # 阿莫西林胶囊 after 阿莫西林片: same generic-name id A040
    history = [PriorSupply(R("阿莫西林片").code, date(2026, 11, 29), 7)]
    v = verdict([RxLine(R("阿莫西林胶囊").code, 1, 4)], "R006", history=history, today=TODAY)
    assert v.outcome == "warn"


def test_r006_ignores_other_ingredients_and_records_in_the_future():
    history = [PriorSupply(AMLODIPINE.code, date(2026, 11, 29), 28), PriorSupply(NIFEDIPINE.code, date(2026, 12, 5), 28)]
    v = verdict([RxLine(NIFEDIPINE.code, 1, 7)], "R006", history=history, today=TODAY)
    assert v.outcome == "pass" and "没有同成分用药记录" in v.message


# --- R007 restrictions --------------------------------------------------------------------

R007_CASES = [
    # (id, drug, kwargs, outcome, words)
    ("unrestricted", NIFEDIPINE, {}, "pass", "无限定支付范围"),
    ("dx restriction met", CLOPIDOGREL, {"diagnoses": ["I25.1"]}, "pass", "本次符合"),
    ("dx restriction unmet", CLOPIDOGREL, {"diagnoses": ["I10"]}, "block", "限 I20、I21、I25、I63、I70 诊断使用，本次诊断 I10"),
    ("dx restriction, no dx", CLOPIDOGREL, {}, "block", "本次诊断 未录入"),
    ("adult drug at 18", LEVOFLOXACIN, {"age": 18}, "pass", "限 18 岁及以上"),
    ("adult drug at 17", LEVOFLOXACIN, {"age": 17}, "block", "限 18 岁及以上使用，患者 17 岁"),
    ("adult drug, age unknown", LEVOFLOXACIN, {}, "warn", "未提供患者年龄"),
    ("child drug at 13", CHILD_COLD, {"age": 13}, "pass", "限 13 岁及以下"),
    ("child drug at 14", CHILD_COLD, {"age": 14}, "block", "患者 14 岁"),
    ("men only, man", TAMSULOSIN, {"sex": "1", "diagnoses": ["N40"]}, "pass", "本次符合"),
    ("men only, woman", TAMSULOSIN, {"sex": "2", "diagnoses": ["N40"]}, "block", "限男性使用，患者为女性"),
    ("men only, no dx either", TAMSULOSIN, {"sex": "女"}, "block", "限 N40 诊断使用"),
    ("women only, 女", WUJI, {"sex": "女"}, "pass", "限女性"),
    ("women only, man", WUJI, {"sex": "1"}, "block", "患者为男性"),
    ("women only, sex unknown", WUJI, {}, "warn", "未提供患者性别"),
]


@pytest.mark.parametrize(
    ("drug", "kw", "outcome", "words"), [c[1:] for c in R007_CASES], ids=[c[0] for c in R007_CASES]
)
def test_r007_diagnosis_age_and_sex_restrictions(drug, kw, outcome, words):
    v = verdict([RxLine(drug.code, 1, 3)], "R007", **kw)
    assert v.outcome == outcome and words in v.message


# --- R008 price ceiling -------------------------------------------------------------------


def test_r008_price_above_ceiling_warns_with_the_self_paid_excess():
    v = verdict([RxLine(LOQUAT.code, 2, 7)], "R008")
    excess = LOQUAT.price_fen - LOQUAT.ceiling_fen
    assert v.outcome == "warn"
    assert f"超出部分 {excess // 100}.{excess % 100:02d} 元×2 瓶" in v.message
    assert v in warnings(check([RxLine(LOQUAT.code, 2, 7)], FM))


def test_r008_price_within_ceiling_and_class_3_pass():
    assert verdict([RxLine(NIFEDIPINE.code, 1, 7)], "R008").message == "硝苯地平控释片：单价 31.70 元，未超过医保限价 36.50 元"
    assert "丙类" in verdict([RxLine(CALCIUM.code, 1, 7)], "R008").message


# --- R009 over-supply ---------------------------------------------------------------------

R009_CASES = [
    ("one box always fits", NIFEDIPINE, 1, 3, "pass"),
    ("2 boxes for 8 days", NIFEDIPINE, 2, 8, "pass"),
    ("2 boxes for 7 days", NIFEDIPINE, 2, 7, "warn"),
]


@pytest.mark.parametrize(("drug", "qty", "days", "outcome"), [c[1:] for c in R009_CASES], ids=[c[0] for c in R009_CASES])
def test_r009_quantity_beyond_the_days(drug, qty, days, outcome):
    assert verdict([RxLine(drug.code, qty, days)], "R009").outcome == outcome


def test_r009_message_says_how_many_units_are_enough():
    v = verdict([RxLine(NIFEDIPINE.code, 3, 7)], "R009")
    assert v.message == "硝苯地平控释片：3 盒按常用量约可用 21 天，处方只写 7 天，1 盒即够"


# --- together -----------------------------------------------------------------------------


def test_the_demo_prescription_passes_every_rule():
    lines = [RxLine(R("xbdp").code, 1, 7), RxLine(R("阿司匹林肠溶片").code, 1, 7)]
    verdicts = check(lines, FM, diagnoses=["I10"])
    assert blocking(verdicts) == [] and warnings(verdicts) == []


def test_every_rule_gives_a_verdict_for_a_clean_line():
    verdicts = check([RxLine(NIFEDIPINE.code, 1, 7)], FM)
    assert sorted({v.rule_id for v in verdicts}) == [f"R00{n}" for n in range(1, 10)]
