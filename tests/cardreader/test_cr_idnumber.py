import pytest

from cardreader import idnumber
from cardreader.idnumber import IdNumberError


def test_valid_id_number_is_accepted_and_returned_unchanged():
    assert idnumber.normalize("440524188001010014") == "440524188001010014"


def test_lowercase_x_check_digit_is_accepted_as_upper_case_x():
    assert idnumber.normalize(" 11010519491231002x ") == "11010519491231002X"


def test_x_check_digit_is_computed_for_remainder_ten():
    assert idnumber.check_digit("11010519491231002") == "X"


def test_wrong_check_digit_is_rejected_with_chinese_message():
    with pytest.raises(IdNumberError) as e:
        idnumber.normalize("440524188001010015")
    assert "校验位" in e.value.message
    assert e.value.detail == "check digit mismatch"


def test_x_where_a_digit_is_due_is_rejected():
    with pytest.raises(IdNumberError, match="校验位"):
        idnumber.normalize("44052418800101001X")


def test_impossible_birth_date_is_rejected():
    with pytest.raises(IdNumberError, match="出生日期"):
        idnumber.normalize("110105194902300010")


def test_wrong_length_is_rejected():
    with pytest.raises(IdNumberError, match="18位"):
        idnumber.normalize("11010519491231002")


def test_sex_and_birth_date_come_from_the_number():
    assert idnumber.sex_code("440524188001010014") == "1"
    assert idnumber.sex_code("11010519491231002X") == "2"
    assert idnumber.birth_date("11010519491231002X").isoformat() == "1949-12-31"
