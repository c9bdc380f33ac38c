"""Faults injected in the virtual reader, seen through a real pty by CardReader.

Each fault either is absorbed by the link layer (and the card reads correctly) or ends in a
typed CardReaderError with a Chinese message -- read_card never returns partial data.
"""
from __future__ import annotations

import dataclasses
import time

import pytest

from cardreader.cardfile import VirtualCard
from cardreader.driver import CardReader
from cardreader.errors import (
    CardExpiredError,
    CardLockedError,
    CardRemovedError,
    NotSocialSecurityCard,
    PinCancelledError,
    PinFormatError,
    PinRequiredError,
    ReaderCommunicationError,
    ReaderNotResponding,
    WrongPinError,
)


@pytest.fixture
def rig(virtual_reader):
    vr, path = virtual_reader
    with CardReader(path, timeout=0.3) as reader:
        yield vr, reader


def chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def test_noise_with_stray_stx_before_every_answer_is_resynced_and_card_reads(rig, sample):
    vr, reader = rig
    vr.add_noise(answers=100)
    assert reader.read_card() == sample


def test_plain_noise_bytes_before_answers_are_skipped(rig, sample):
    vr, reader = rig
    vr.add_noise(answers=100, noise=b"\xAA\x55\x00\xFF" * 8)
    assert reader.read_card() == sample


def test_two_corrupted_answers_are_retransmitted_and_card_reads(rig, sample):
    vr, reader = rig
    vr.corrupt_answers(2)
    assert reader.read_card() == sample
    assert vr.faults.corrupt_answers == 0


def test_answers_corrupted_beyond_three_retransmissions_give_chinese_error(rig):
    vr, reader = rig
    vr.corrupt_answers(4)
    with pytest.raises(ReaderCommunicationError) as e:
        reader.read_card()
    assert e.value.message == "读卡器通信受到干扰，读卡失败，请检查读卡器连接线后重试"
    assert "corrupt 4" in e.value.detail


def test_answers_split_into_delayed_pieces_are_reassembled(rig, sample):
    vr, reader = rig
    vr.split_answers(n=100, pieces=4, delay=0.02)
    assert reader.read_card() == sample


def test_slow_reader_within_timeout_reads_the_card(rig, sample):
    vr, reader = rig
    vr.slow(0.1)
    assert reader.read_card() == sample


def test_reader_that_stops_answering_gives_no_response_error_within_four_timeouts(rig):
    vr, reader = rig
    reader.timeout = 0.15
    vr.set_silent()
    start = time.monotonic()
    with pytest.raises(ReaderNotResponding) as e:
        reader.read_card()
    assert e.value.message == "读卡器没有响应，请检查读卡器连接线后重试"
    assert time.monotonic() - start < 4 * 0.15 + 0.5


def test_two_naked_requests_are_retransmitted_and_card_reads(rig, sample):
    vr, reader = rig
    vr.nak_requests(2)
    assert reader.read_card() == sample


def test_four_naked_requests_give_communication_error(rig):
    vr, reader = rig
    vr.nak_requests(4)
    with pytest.raises(ReaderCommunicationError) as e:
        reader.version()
    assert "nak 4" in e.value.detail


def test_card_pulled_out_mid_read_gives_chinese_removed_error_and_no_data(rig, sample):
    vr, reader = rig
    vr.pull_card_after(apdus=2)  # SELECT and EF05 answered, then the card is gone
    with pytest.raises(CardRemovedError) as e:
        reader.read_card()
    assert e.value.message == "读卡过程中卡片被拔出，请重新插入社保卡后再读"
    vr.insert(VirtualCard.from_card_data(sample))
    assert reader.read_card() == sample  # the reader is usable again


def test_expired_card_gives_chinese_expired_error_with_the_date(rig, sample):
    vr, reader = rig
    old = dataclasses.replace(sample, issue_date="20130105", expiry_date="20230105")
    vr.insert(VirtualCard.from_card_data(old))
    with pytest.raises(CardExpiredError) as e:
        reader.read_card()
    assert "2023年01月05日" in e.value.message and "过有效期" in e.value.message


def test_expiry_check_can_be_left_to_the_insurer(rig, sample):
    vr, reader = rig
    old = dataclasses.replace(sample, issue_date="20130105", expiry_date="20230105")
    vr.insert(VirtualCard.from_card_data(old))
    assert reader.read_card(check_expiry=False) == old


def test_card_that_is_not_a_social_security_card_gives_chinese_error(rig, sample):
    vr, reader = rig
    bank_card = VirtualCard(vr.card.files, aid=bytes.fromhex("A000000333010101"))
    vr.insert(bank_card)
    with pytest.raises(NotSocialSecurityCard) as e:
        reader.read_card()
    assert e.value.sw == 0x6A82 and "不是社保卡" in e.value.message


@pytest.fixture
def pin_card(rig, sample):
    vr, reader = rig
    card = VirtualCard.from_card_data(sample, pin="123456")
    vr.insert(card)
    return vr, reader, card


def test_pin_protected_card_reads_with_the_right_pin(pin_card, sample):
    _, reader, card = pin_card
    assert reader.read_card(pin="123456") == sample
    assert card.pin_tries_left == 3


def test_pin_protected_card_without_pin_asks_for_it_in_chinese(pin_card):
    _, reader, _ = pin_card
    with pytest.raises(PinRequiredError) as e:
        reader.read_card()
    assert "密码" in e.value.message


def test_wrong_pin_says_tries_left_and_third_wrong_pin_locks(pin_card):
    _, reader, card = pin_card
    with pytest.raises(WrongPinError) as e:
        reader.read_card(pin="000000")
    assert e.value.remaining == 2 and e.value.message == "社保卡密码错误，还可以再试2次"
    with pytest.raises(WrongPinError):
        reader.read_card(pin="000000")
    with pytest.raises(CardLockedError) as e:
        reader.read_card(pin="000000")
    assert "锁定" in e.value.message and card.pin_tries_left == 0


def test_locked_card_is_reported_locked_even_with_the_right_pin(pin_card):
    _, reader, card = pin_card
    card.pin_tries_left = 0
    with pytest.raises(CardLockedError):
        reader.read_card(pin="123456")
    with pytest.raises(CardLockedError):
        reader.read_card()  # no PIN given: still "locked", not "enter PIN"


def test_lost_answer_to_verify_does_not_cost_a_second_pin_try(pin_card):
    vr, reader, card = pin_card
    # Answers: POWER_ON, SELECT, EF05, EF06 (6982), VERIFY status, then VERIFY: damage that one.
    vr.corrupt_answers(1, after=5)
    with pytest.raises(WrongPinError) as e:
        reader.read_card(pin="000000")
    assert vr.faults.corrupt_answers == 0  # the damage did happen; VERIFY was sent twice
    assert e.value.remaining == 2 and card.pin_tries_left == 2


def test_pin_typed_on_the_reader_pad_is_used(pin_card, sample):
    vr, reader, _ = pin_card
    vr.type_pin("123456")
    assert reader.read_card(pin_pad=True) == sample


def test_pin_pad_cancel_gives_chinese_cancel_error(pin_card):
    vr, reader, _ = pin_card
    vr.type_pin(None)
    with pytest.raises(PinCancelledError) as e:
        reader.read_card(pin_pad=True)
    assert chinese(e.value.message)


def test_pin_that_is_not_digits_is_refused_before_touching_the_card(pin_card):
    _, reader, card = pin_card
    with pytest.raises(PinFormatError):
        reader.read_card(pin="12a456")
    assert card.pin_tries_left == 3


def test_trace_never_contains_the_pin(pin_card):
    vr, reader, _ = pin_card
    trace: list[str] = []
    reader.on_exchange = lambda c, r: trace.append(c + r)
    reader.read_card(pin="123456")
    vr.type_pin("123456")
    reader.read_card(pin_pad=True)
    text = "".join(trace)
    assert "123456" not in text and "31323334" not in text and "PIN ****" in text


def test_reader_dying_mid_read_fails_within_four_timeouts_without_a_power_off_wait(rig):
    vr, reader = rig
    reader.timeout = 0.15
    vr.set_silent(after=1)  # answers POWER_ON, then nothing
    start = time.monotonic()
    with pytest.raises(ReaderNotResponding):
        reader.read_card()
    # 4 tries of SELECT; a POWER_OFF after it would add another 4 x timeout.
    assert time.monotonic() - start < 4 * 0.15 + 0.5
