"""The social-security card's files (our model of an ISO 7816-4 card) and their codecs.

The social-security application is selected by name (AID = "sx1.sh.社会保障" in GBK).  Inside
it two transparent EFs hold simple-TLV items; READ RECORD with record number = tag returns
one item, READ BINARY returns the whole file:

EF05 card identification (SFI 5)          EF06 cardholder (SFI 6)
  01 卡识别码 card_sn   16 bytes binary     08 社会保障号码  18 ASCII
  02 卡的类别 card type  1 ASCII             09 姓名          UTF-8 or GBK, 00/space padded
  03 规范版本           ASCII "3.00"        0A 性别          '1' male / '2' female
  04 发卡地区代码        6 ASCII digits      0D 出生日期       4 bytes BCD yyyymmdd
  05 发卡日期           4 bytes BCD
  06 卡有效期           4 bytes BCD
  07 卡号              ASCII

``VirtualCard`` holds these files and answers the APDUs, as the emulator's card.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import IntEnum

from . import apdu as A
from . import idnumber
from .card import CardData
from .errors import ApduFormatError, CardDataError, TlvError
from .tlv import encode_tlv, tlv_dict

SSC_AID = "sx1.sh.社会保障".encode("gbk")
SFI_CARD_ID = 0x05
SFI_HOLDER = 0x06
NAME_FIELD_LEN = 30  # cards personalise the name into a fixed 30-byte field


class Tag(IntEnum):
    CARD_SN = 0x01
    CARD_TYPE = 0x02
    SPEC_VERSION = 0x03
    REGION = 0x04
    ISSUE_DATE = 0x05
    EXPIRY_DATE = 0x06
    CARD_NO = 0x07
    CERTNO = 0x08
    NAME = 0x09
    SEX = 0x0A
    BIRTH_DATE = 0x0D


# Items that identify a person: never shown in a trace or a log.
SENSITIVE_TAGS = frozenset({Tag.CARD_NO, Tag.CERTNO, Tag.NAME, Tag.BIRTH_DATE})


@dataclass(frozen=True)
class Cardholder:
    certno: str
    name: str
    sex: str          # '1' male, '2' female (platform gend code)
    birth_date: str   # yyyyMMdd

    def __repr__(self) -> str:
        return f"Cardholder(sex={self.sex})"


def bcd_date(yyyymmdd: str) -> bytes:
    _valid_date(yyyymmdd, "date")
    return bytes.fromhex(yyyymmdd)


def date_from_bcd(raw: bytes, what: str) -> str:
    text = raw.hex()
    if len(raw) != 4 or not text.isdigit():
        raise CardDataError(detail=f"{what}: not a 4-byte BCD date")
    _valid_date(text, what)
    return text


def _valid_date(text: str, what: str) -> date:
    try:
        if len(text) != 8 or not text.isdigit():
            raise ValueError
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise CardDataError(detail=f"{what}: not a date yyyyMMdd") from None


def encode_name(name: str, encoding: str = "gbk") -> bytes:
    raw = name.encode(encoding)
    return raw + b"\x00" * (NAME_FIELD_LEN - len(raw)) if len(raw) < NAME_FIELD_LEN else raw


def decode_name(raw: bytes) -> str:
    """Cards in the field carry GBK; newer personalisation uses UTF-8.  A GBK Chinese name is
    almost never valid UTF-8, so try UTF-8 strictly first, then GBK."""
    raw = raw.rstrip(b"\x00 ").rstrip(b"\xff")
    for enc in ("utf-8", "gbk"):
        try:
            name = raw.decode(enc)
        except UnicodeDecodeError:
            continue
        if name and name.isprintable():
            return name.strip()
    raise CardDataError(detail="name: neither UTF-8 nor GBK, or empty")


def build_card_id_file(card: CardData, card_type: str = "3") -> bytes:
    try:
        sn = bytes.fromhex(card.card_sn)
    except ValueError:
        raise ValueError("card_sn must be 32 hex characters") from None
    return encode_tlv([
        (Tag.CARD_SN, sn),
        (Tag.CARD_TYPE, card_type.encode("ascii")),
        (Tag.SPEC_VERSION, card.spec_version.encode("ascii")),
        (Tag.REGION, card.region_code.encode("ascii")),
        (Tag.ISSUE_DATE, bcd_date(card.issue_date)),
        (Tag.EXPIRY_DATE, bcd_date(card.expiry_date)),
        (Tag.CARD_NO, card.card_no.encode("ascii")),
    ])


def build_holder_file(holder: Cardholder, name_encoding: str = "gbk") -> bytes:
    return encode_tlv([
        (Tag.CERTNO, holder.certno.encode("ascii")),
        (Tag.NAME, encode_name(holder.name, name_encoding)),
        (Tag.SEX, holder.sex.encode("ascii")),
        (Tag.BIRTH_DATE, bcd_date(holder.birth_date)),
    ])


def _items(raw: bytes, what: str, required: tuple[Tag, ...]) -> dict[int, bytes]:
    try:
        items = tlv_dict(raw)
    except TlvError as e:
        raise CardDataError(detail=f"{what}: {e}") from None
    missing = [t.name for t in required if t not in items]
    if missing:
        raise CardDataError(detail=f"{what}: missing {', '.join(missing)}")
    return items


def _ascii(raw: bytes, what: str) -> str:
    try:
        text = raw.decode("ascii").strip(" \x00")
    except UnicodeDecodeError:
        raise CardDataError(detail=f"{what}: not ASCII") from None
    if not text.isprintable():
        raise CardDataError(detail=f"{what}: control characters")
    return text


def parse_holder_file(raw: bytes) -> Cardholder:
    items = _items(raw, "EF06", (Tag.CERTNO, Tag.NAME))
    try:
        certno = idnumber.normalize(_ascii(items[Tag.CERTNO], "certno"))
    except idnumber.IdNumberError as e:
        raise CardDataError(detail=f"certno: {e.detail}") from None
    birth = certno[6:14]
    if Tag.BIRTH_DATE in items and date_from_bcd(items[Tag.BIRTH_DATE], "birth date") != birth:
        raise CardDataError(detail="birth date disagrees with the ID number")
    sex = _ascii(items[Tag.SEX], "sex") if Tag.SEX in items else idnumber.sex_code(certno)
    if sex not in ("1", "2"):
        raise CardDataError(detail="sex: not 1 or 2")
    return Cardholder(certno, decode_name(items[Tag.NAME]), sex, birth)


def card_data_from_files(atr: bytes, ef05: bytes, ef06: bytes, *,
                         terminal_no: str = "", device_no: str = "") -> CardData:
    """Build the counter's CardData from the raw files, checking every field; raise
    CardDataError (no partial data) if anything is off."""
    items = _items(ef05, "EF05", (Tag.CARD_SN, Tag.SPEC_VERSION, Tag.REGION, Tag.ISSUE_DATE,
                                  Tag.EXPIRY_DATE, Tag.CARD_NO))
    holder = parse_holder_file(ef06)
    if len(items[Tag.CARD_SN]) != 16:
        raise CardDataError(detail=f"card_sn: {len(items[Tag.CARD_SN])} bytes, expected 16")
    region = _ascii(items[Tag.REGION], "region")
    if len(region) != 6 or not region.isdigit():
        raise CardDataError(detail="region: not 6 digits")
    card_no = _ascii(items[Tag.CARD_NO], "card_no")
    if not card_no or "|" in card_no:
        raise CardDataError(detail="card_no: empty or contains '|'")
    spec = _ascii(items[Tag.SPEC_VERSION], "spec_version")
    if "|" in spec or "|" in holder.name:
        raise CardDataError(detail="field contains '|'")
    issue = date_from_bcd(items[Tag.ISSUE_DATE], "issue date")
    expiry = date_from_bcd(items[Tag.EXPIRY_DATE], "expiry date")
    if expiry < issue:
        raise CardDataError(detail="expiry date before issue date")
    return CardData(
        region_code=region, certno=holder.certno, card_no=card_no,
        card_sn=items[Tag.CARD_SN].hex().upper(), name=holder.name, atr=atr.hex().upper(),
        spec_version=spec, issue_date=issue, expiry_date=expiry,
        terminal_no=terminal_no, device_no=device_no)


def redact_file(raw: bytes) -> str:
    """A trace-safe rendering of a file's content: sensitive items become '*' x length."""
    try:
        items = tlv_dict(raw)
    except TlvError:
        return f"<{len(raw)} bytes, unparsed, masked>"
    parts = []
    for tag, value in items.items():
        shown = "*" * len(value) if tag in SENSITIVE_TAGS else value.hex().upper()
        parts.append(f"{tag:02X}:{shown}")
    return " ".join(parts)


DEFAULT_ATR = bytes.fromhex("3B6800005343534333303031")  # T=0, 8 historical bytes "SCSC3001"


class VirtualCard:
    """A social-security card in memory that answers APDUs like the real one (as far as our
    client uses it).  ``transmit`` never raises: bad input gets a status word, as on a card.

    ``pin`` (digits) makes EF06 readable only after VERIFY; ``pin_tries`` wrong PINs lock it.
    ``t0=True`` answers like a T=0 card: response data waits behind ``61xx`` for GET RESPONSE.
    """

    def __init__(self, files: dict[int, bytes], *, atr: bytes = DEFAULT_ATR, aid: bytes = SSC_AID,
                 pin: str | None = None, pin_tries: int = 3, t0: bool = False):
        self.t0 = t0
        self._pending = b""
        self.files = dict(files)
        self.atr = bytes(atr)
        self.aid = bytes(aid)
        self.pin = pin
        self.pin_tries_max = pin_tries
        self.pin_tries_left = pin_tries
        self.protected = frozenset({SFI_HOLDER}) if pin else frozenset()
        self.reset()

    @classmethod
    def from_card_data(cls, card: CardData, *, sex: str | None = None,
                       birth: date | str | None = None, name_encoding: str = "gbk",
                       pin: str | None = None, pin_tries: int = 3,
                       aid: bytes = SSC_AID) -> VirtualCard:
        """sex ('1'/'2') and birth (a date, "yyyyMMdd" or "yyyy-MM-dd") default to what the
        ID number says."""
        if isinstance(birth, date):
            birth = birth.strftime("%Y%m%d")
        holder = Cardholder(card.certno, card.name, sex or idnumber.sex_code(card.certno),
                            (birth or card.certno[6:14]).replace("-", ""))
        files = {SFI_CARD_ID: build_card_id_file(card),
                 SFI_HOLDER: build_holder_file(holder, name_encoding)}
        atr = bytes.fromhex(card.atr) if card.atr else DEFAULT_ATR
        return cls(files, atr=atr, aid=aid, pin=pin, pin_tries=pin_tries)

    def reset(self) -> bytes:
        """Cold reset: nothing selected, PIN no longer verified.  Returns the ATR."""
        self.app_selected = False
        self._pending = b""
        self.current_ef: int | None = None
        self.verified = False
        return self.atr

    def transmit(self, raw: bytes) -> bytes:
        try:
            cmd = A.Command.parse(raw)
        except ApduFormatError:
            return _sw(A.SW_WRONG_LENGTH)
        if cmd.cla != 0x00:
            return _sw(A.SW_CLA_NOT_SUPPORTED)
        if cmd.ins == A.INS_GET_RESPONSE:
            return self._get_response(cmd)
        self._pending = b""
        handler = {A.INS_SELECT: self._select, A.INS_READ_BINARY: self._read_binary,
                   A.INS_READ_RECORD: self._read_record, A.INS_VERIFY: self._verify}.get(cmd.ins)
        answer = handler(cmd) if handler else _sw(A.SW_INS_NOT_SUPPORTED)
        if self.t0 and len(answer) > 2 and answer[-2:] == _sw(A.SW_OK):
            self._pending = answer[:-2]   # T=0: the data waits for GET RESPONSE
            return _sw(0x6100 | (len(self._pending) & 0xFF))
        return answer

    def _get_response(self, cmd: A.Command) -> bytes:
        if not self._pending:
            return _sw(0x6985)  # conditions of use not satisfied: nothing to get
        chunk, self._pending = self._pending[:cmd.ne], self._pending[cmd.ne:]
        more = 0x6100 | (len(self._pending) & 0xFF) if self._pending else A.SW_OK
        return chunk + _sw(more)

    def _select(self, cmd: A.Command) -> bytes:
        if cmd.p1 == 0x04:
            self.app_selected = cmd.data == self.aid
            self.current_ef = None
            return _sw(A.SW_OK if self.app_selected else A.SW_NOT_FOUND)
        if cmd.p1 == 0x00 and cmd.data in (b"", b"\x3f\x00"):  # back to the MF
            self.app_selected, self.current_ef = False, None
            return _sw(A.SW_OK)
        return _sw(A.SW_WRONG_P1P2)

    def _file(self, sfi: int) -> tuple[bytes | None, int]:
        if not self.app_selected or sfi not in self.files:
            return None, A.SW_NOT_FOUND
        if sfi in self.protected and not self.verified:
            return None, A.SW_SECURITY
        return self.files[sfi], A.SW_OK

    def _read_binary(self, cmd: A.Command) -> bytes:
        if cmd.p1 & 0x80:
            sfi, offset = cmd.p1 & 0x1F, cmd.p2
        elif self.current_ef is None:
            return _sw(0x6986)  # command not allowed: no current EF
        else:
            sfi, offset = self.current_ef, (cmd.p1 << 8) | cmd.p2
        content, sw = self._file(sfi)
        if content is None:
            return _sw(sw)
        self.current_ef = sfi
        if offset > len(content):
            return _sw(A.SW_WRONG_OFFSET)
        chunk = content[offset:offset + cmd.ne]
        short = cmd.le not in (None, 0) and len(chunk) < cmd.ne
        return chunk + (A.SW_EOF if short else A.SW_OK).to_bytes(2, "big")

    def _read_record(self, cmd: A.Command) -> bytes:
        if cmd.p2 & 0x07 != 0x04:
            return _sw(A.SW_WRONG_P1P2)
        sfi = cmd.p2 >> 3 or self.current_ef
        if sfi is None:
            return _sw(0x6986)
        content, sw = self._file(sfi)
        if content is None:
            return _sw(sw)
        self.current_ef = sfi
        value = tlv_dict(content).get(cmd.p1)
        if value is None:
            return _sw(A.SW_RECORD_NOT_FOUND)
        return encode_tlv([(cmd.p1, value)]) + _sw(A.SW_OK)

    def _verify(self, cmd: A.Command) -> bytes:
        if self.pin is None:
            return _sw(0x6A88)  # referenced data (a PIN) not found
        if self.pin_tries_left == 0:
            return _sw(A.SW_BLOCKED)
        if not cmd.data:  # status query: 9000 if verified, else tries left
            return _sw(A.SW_OK if self.verified else 0x63C0 | self.pin_tries_left)
        if cmd.data.hex().upper().rstrip("F") == self.pin:
            self.pin_tries_left, self.verified = self.pin_tries_max, True
            return _sw(A.SW_OK)
        self.pin_tries_left -= 1
        self.verified = False
        return _sw(A.SW_BLOCKED if self.pin_tries_left == 0 else 0x63C0 | self.pin_tries_left)


def _sw(sw: int) -> bytes:
    return sw.to_bytes(2, "big")
