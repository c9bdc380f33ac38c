"""TLV codec, APDU codec, status-word checking and the virtual card's answers."""
from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cardreader import apdu as A
from cardreader.cardfile import (
    SFI_CARD_ID,
    SFI_HOLDER,
    SSC_AID,
    Tag,
    VirtualCard,
    card_data_from_files,
    decode_name,
    redact_file,
)
from cardreader.errors import (
    ApduFormatError,
    CardDataError,
    CardFileNotFound,
    CardLockedError,
    CardStatusError,
    PinRequiredError,
    TlvError,
    WrongPinError,
)
from cardreader.tlv import encode_tlv, parse_tlv, tlv_dict

items = st.lists(st.tuples(st.integers(1, 0xFE), st.binary(max_size=300)), max_size=5)


@settings(max_examples=200, deadline=None)
@given(items)
def test_tlv_round_trips_including_three_byte_lengths(its):
    assert parse_tlv(encode_tlv(its)) == its


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_tlv_parser_gives_items_or_tlv_error_for_any_bytes(junk):
    try:
        assert isinstance(parse_tlv(junk), list)
    except TlvError:
        pass


def test_tlv_value_running_past_the_end_is_an_error():
    with pytest.raises(TlvError, match="runs past"):
        parse_tlv(bytes.fromhex("0805313233"))


def test_tlv_tag_without_length_is_an_error():
    with pytest.raises(TlvError):
        parse_tlv(bytes.fromhex("0801310A"))


def test_tlv_trailing_ff_padding_is_ignored():
    assert parse_tlv(bytes.fromhex("0A0131FFFFFF")) == [(0x0A, b"1")]


def test_tlv_garbage_after_padding_is_an_error():
    with pytest.raises(TlvError):
        parse_tlv(bytes.fromhex("0A0131FF0A"))


def test_tlv_duplicate_tag_is_an_error():
    with pytest.raises(TlvError, match="twice"):
        tlv_dict(bytes.fromhex("0A01310A0132"))


def test_select_apdu_encodes_aid_with_lc_and_le():
    assert A.select_aid(SSC_AID).encode().hex().upper() == \
        "00A404000F7378312E73682EC9E7BBE1B1A3D5CF00"


def test_read_apdus_encode_sfi_in_p1_or_p2():
    assert A.read_binary_sfi(5).encode().hex().upper() == "00B0850000"
    assert A.read_record(8, 6).encode().hex().upper() == "00B2083400"


@pytest.mark.parametrize("cmd", [A.select_aid(SSC_AID), A.read_binary_sfi(6), A.verify("123456"),
                                 A.Command(0, 0xA4, 0, 0)])
def test_command_apdu_round_trips(cmd):
    assert A.Command.parse(cmd.encode()) == cmd


def test_command_apdu_with_wrong_lc_is_a_format_error():
    with pytest.raises(ApduFormatError):
        A.Command.parse(bytes.fromhex("00A4040005AABB"))


def test_check_sw_passes_9000():
    A.check_sw(0x9000)


@pytest.mark.parametrize("sw,err", [(0x6A82, CardFileNotFound), (0x6982, PinRequiredError),
                                    (0x6983, CardLockedError), (0x63C2, WrongPinError),
                                    (0x63C0, CardLockedError), (0x6D00, CardStatusError)])
def test_check_sw_maps_status_words_to_typed_errors_with_chinese_message(sw, err):
    with pytest.raises(err) as e:
        A.check_sw(sw, "READ")
    assert e.value.sw == sw and e.value.detail == f"READ: SW {sw:04X}"
    assert any("\u4e00" <= ch <= "\u9fff" for ch in e.value.message)


def test_wrong_pin_error_says_how_many_tries_are_left():
    with pytest.raises(WrongPinError) as e:
        A.check_sw(0x63C2)
    assert e.value.remaining == 2 and "2次" in e.value.message


@pytest.fixture
def card(sample):
    c = VirtualCard.from_card_data(sample)
    c.reset()
    return c


def send(card, cmd):
    return A.Response.parse(card.transmit(cmd.encode()))


def test_virtual_card_read_before_select_answers_6a82(card):
    assert send(card, A.read_binary_sfi(SFI_CARD_ID)).sw == 0x6A82


def test_virtual_card_select_of_unknown_aid_answers_6a82(card):
    assert send(card, A.select_aid(b"\xA0\x00\x00\x00\x03")).sw == 0x6A82


def test_virtual_card_read_binary_returns_the_card_id_file(card, sample):
    send(card, A.select_aid(SSC_AID))
    r = send(card, A.read_binary_sfi(SFI_CARD_ID))
    assert r.sw == 0x9000
    assert tlv_dict(r.data)[Tag.CARD_SN].hex().upper() == sample.card_sn


def test_virtual_card_read_binary_at_offset_continues_the_current_file(card):
    send(card, A.select_aid(SSC_AID))
    whole = send(card, A.read_binary_sfi(SFI_HOLDER)).data
    assert send(card, A.read_binary(10, le=5)).data == whole[10:15]


def test_virtual_card_offset_past_end_answers_6b00(card):
    send(card, A.select_aid(SSC_AID))
    send(card, A.read_binary_sfi(SFI_HOLDER))
    assert send(card, A.read_binary(1000)).sw == 0x6B00


def test_virtual_card_read_record_by_tag_returns_one_tlv(card, sample):
    send(card, A.select_aid(SSC_AID))
    r = send(card, A.read_record(Tag.CERTNO, SFI_HOLDER))
    assert r.sw == 0x9000 and parse_tlv(r.data) == [(Tag.CERTNO, sample.certno.encode())]
    assert send(card, A.read_record(0x0C, SFI_HOLDER)).sw == 0x6A83


def test_virtual_card_unknown_instruction_answers_6d00(card):
    assert send(card, A.Command(0x00, 0x84, 0, 0, le=8)).sw == 0x6D00


def test_virtual_card_malformed_apdu_answers_6700(card):
    assert card.transmit(b"\x00\xA4") == b"\x67\x00"


def test_virtual_card_with_pin_hides_cardholder_file_until_verify(sample):
    card = VirtualCard.from_card_data(sample, pin="123456")
    send(card, A.select_aid(SSC_AID))
    assert send(card, A.read_binary_sfi(SFI_HOLDER)).sw == 0x6982
    assert send(card, A.verify("123456")).sw == 0x9000
    assert send(card, A.read_binary_sfi(SFI_HOLDER)).sw == 0x9000


def files_of(sample, **changes):
    card = VirtualCard.from_card_data(dataclasses.replace(sample, **changes))
    return card.files[SFI_CARD_ID], card.files[SFI_HOLDER]


def test_files_built_from_card_data_read_back_equal(sample):
    ef05, ef06 = files_of(sample)
    assert card_data_from_files(bytes.fromhex(sample.atr), ef05, ef06) == sample


def test_utf8_and_gbk_names_both_read_back(sample):
    for enc in ("utf-8", "gbk"):
        card = VirtualCard.from_card_data(sample, name_encoding=enc)
        assert card_data_from_files(b"\x3b", card.files[5], card.files[6]).name == "张晓梅"


def test_name_that_is_neither_utf8_nor_gbk_is_a_card_data_error():
    with pytest.raises(CardDataError):
        decode_name(b"\xff\xfe\x80\x81")


def test_id_number_with_wrong_check_digit_on_card_is_a_card_data_error(sample):
    ef05, ef06 = files_of(sample)
    bad = ef06.replace(b"11010519491231002X", b"110105194912310021")
    with pytest.raises(CardDataError) as e:
        card_data_from_files(b"\x3b", ef05, bad)
    assert e.value.message == "读卡失败：卡片数据校验错误，请重新插卡"
    assert "1101" not in e.value.detail


def test_missing_card_number_is_a_card_data_error(sample):
    ef05, ef06 = files_of(sample)
    items = [(t, v) for t, v in parse_tlv(ef05) if t != Tag.CARD_NO]
    with pytest.raises(CardDataError, match="卡片数据校验错误"):
        card_data_from_files(b"\x3b", encode_tlv(items), ef06)


def test_redacted_file_shows_no_id_number_name_or_card_number(sample):
    ef05, ef06 = files_of(sample)
    text = redact_file(ef05) + redact_file(ef06)
    for secret in (sample.certno.encode().hex().upper(), sample.card_no.encode().hex().upper(),
                   "张晓梅".encode("gbk").hex().upper()):
        assert secret not in text


def test_virtual_card_accepts_birth_as_date_or_dashed_string(sample):
    from datetime import date
    for birth in (date(1949, 12, 31), "1949-12-31", "19491231"):
        card = VirtualCard.from_card_data(sample, sex="2", birth=birth)
        assert card_data_from_files(b"\x3b", card.files[5], card.files[6]) == \
            dataclasses.replace(sample, atr="3B")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_command_apdu_parser_gives_command_or_format_error_for_any_bytes(junk):
    try:
        cmd = A.Command.parse(junk)
    except ApduFormatError:
        return
    assert cmd.encode() == junk


tlv_files = st.lists(st.tuples(st.sampled_from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13]),
                               st.binary(max_size=40)), max_size=12).map(encode_tlv)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=120), tlv_files), st.one_of(st.binary(max_size=120), tlv_files))
def test_any_file_content_gives_card_data_or_card_data_error_never_another_exception(ef05, ef06):
    try:
        card_data_from_files(b"\x3b", ef05, ef06)
    except CardDataError as e:
        assert e.message == "读卡失败：卡片数据校验错误，请重新插卡"
