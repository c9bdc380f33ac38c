"""The previous formulary (v1, 150 drugs) and the field-level diff between versions."""

from dataclasses import replace
from pathlib import Path

import pytest

from formulary import load_csv
from formulary.diff import FIELD_LABELS, diff

DATA = Path(__file__).resolve().parents[2] / "formulary" / "data"


@pytest.fixture(scope="module")
def v1():
    return load_csv(DATA / "formulary_v1.csv")


@pytest.fixture(scope="module")
def v2():
    return load_csv(DATA / "formulary_v2.csv")


def test_v1_has_150_valid_drugs_all_kept_in_v2(v1, v2):
    assert len(v1) == 150 and len({d.code for d in v1}) == 150
    assert {d.code for d in v1} <= {d.code for d in v2}


def test_v1_to_v2_adds_50_removes_none_and_changes_a_few_prices(v1, v2):
    d = diff(v1, v2)
    assert d.summary() == f"新增 50 种，删除 0 种，变更 {len(d.changed)} 种"
    assert len(d.added) == 50 and d.removed == ()
    assert 3 <= len(d.changed) <= 10
    assert [x.code for x in d.added] == [x.code for x in v2 if x.code not in {y.code for y in v1}]


def test_a_price_change_is_reported_field_by_field_in_yuan(v1, v2):
    changes = {c.name: c for c in diff(v1, v2).changed}
    amlodipine = changes["苯磺酸氨氯地平片"]
    price = amlodipine.field("price_fen")
    assert (price.old, price.new) == (1890, 420)
    assert price.describe() == "价格 18.90 元 → 4.20 元"
    assert amlodipine.field("ceiling_fen") is not None and amlodipine.field("name") is None
    assert amlodipine.describe().startswith("苯磺酸氨氯地平片（XC08CAB557")


def test_a_class_change_is_described_in_words(v1, v2):
    change = {c.name: c for c in diff(v1, v2).changed}["蒙脱石散"]
    assert [c.describe() for c in change.changes] == ["甲乙丙类 乙类 → 甲类"]


def test_identical_versions_have_an_empty_diff(v2):
    assert diff(v2, v2).is_empty


def test_removed_drugs_and_every_kind_of_field_change_are_seen(v2):
    a, b = v2[0], v2[1]
    edited = replace(b, trade_names=("新商品名",), chronic=not b.chronic, restrict_dx=("I10",), sex="2", min_age=18)
    d = diff([a, b], [edited])
    assert d.removed == (a,) and d.added == ()
    (change,) = d.changed
    assert {c.field for c in change.changes} == {"trade_names", "chronic", "restrict_dx", "sex", "min_age"}
    text = change.describe()
    assert "商品名" in text and "限定性别 无 → 女性" in text and "最小年龄 无 → 18" in text


def test_every_drug_field_but_the_code_has_a_label():
    assert "code" not in FIELD_LABELS and "price_fen" in FIELD_LABELS
