"""ISO 7816-4 short APDUs, the commands we send, and the one place status words are checked."""
from __future__ import annotations

from dataclasses import dataclass

from .errors import (
    ApduFormatError,
    CardFileNotFound,
    CardLockedError,
    CardStatusError,
    PinRequiredError,
    WrongPinError,
)

# Instruction bytes
INS_SELECT = 0xA4
INS_READ_BINARY = 0xB0
INS_READ_RECORD = 0xB2
INS_VERIFY = 0x20
INS_GET_RESPONSE = 0xC0

# Status words
SW_OK = 0x9000
SW_EOF = 0x6282              # end of file reached before Le bytes
SW_FILE_INVALIDATED = 0x6283
SW_WRONG_LENGTH = 0x6700
SW_SECURITY = 0x6982         # security status not satisfied (PIN not verified)
SW_BLOCKED = 0x6983          # authentication method blocked (PIN locked)
SW_NOT_FOUND = 0x6A82        # file / application not found
SW_RECORD_NOT_FOUND = 0x6A83
SW_WRONG_P1P2 = 0x6A86
SW_WRONG_OFFSET = 0x6B00
SW_INS_NOT_SUPPORTED = 0x6D00
SW_CLA_NOT_SUPPORTED = 0x6E00


@dataclass(frozen=True)
class Command:
    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None  # None: no Le; 0: up to 256

    def encode(self) -> bytes:
        if len(self.data) > 255:
            raise ApduFormatError("short APDU data is at most 255 bytes")
        out = bytes((self.cla, self.ins, self.p1, self.p2))
        if self.data:
            out += bytes((len(self.data),)) + self.data
        if self.le is not None:
            out += bytes((self.le & 0xFF,))
        return out

    @classmethod
    def parse(cls, raw: bytes) -> Command:
        raw = bytes(raw)
        if len(raw) < 4:
            raise ApduFormatError(f"APDU of {len(raw)} bytes")
        head, rest = raw[:4], raw[4:]
        if not rest:
            return cls(*head)
        if len(rest) == 1:
            return cls(*head, le=rest[0])
        lc = rest[0]
        if lc == 0 or len(rest) not in (1 + lc, 2 + lc):
            raise ApduFormatError(f"Lc {lc} does not match {len(rest) - 1} bytes after it")
        le = rest[1 + lc] if len(rest) == 2 + lc else None
        return cls(*head, data=rest[1:1 + lc], le=le)

    @property
    def ne(self) -> int:
        """Expected response length (Le 0 means 256)."""
        return 0 if self.le is None else (self.le or 256)


@dataclass(frozen=True)
class Response:
    data: bytes
    sw: int

    def encode(self) -> bytes:
        return self.data + self.sw.to_bytes(2, "big")

    @classmethod
    def parse(cls, raw: bytes) -> Response:
        if len(raw) < 2:
            raise ApduFormatError(f"response APDU of {len(raw)} bytes")
        return cls(bytes(raw[:-2]), int.from_bytes(raw[-2:], "big"))

    def __repr__(self) -> str:  # data may be personal: show only its size
        return f"Response({len(self.data)} bytes, sw={self.sw:04X})"


def select_aid(aid: bytes) -> Command:
    return Command(0x00, INS_SELECT, 0x04, 0x00, aid, 0x00)


def read_binary_sfi(sfi: int, offset: int = 0, le: int = 0) -> Command:
    """READ BINARY with a short file identifier (P1 = 0x80 | SFI, P2 = offset < 256)."""
    return Command(0x00, INS_READ_BINARY, 0x80 | sfi, offset, le=le)


def read_binary(offset: int, le: int = 0) -> Command:
    """READ BINARY of the current EF at a 15-bit offset."""
    return Command(0x00, INS_READ_BINARY, (offset >> 8) & 0x7F, offset & 0xFF, le=le)


def read_record(record: int, sfi: int, le: int = 0) -> Command:
    """READ RECORD by number in the EF with this SFI (P2 = SFI << 3 | 4)."""
    return Command(0x00, INS_READ_RECORD, record, (sfi << 3) | 0x04, le=le)


def verify(pin: str) -> Command:
    """VERIFY the cardholder PIN, digits packed two per byte (BCD), odd length padded with F."""
    digits = pin + ("F" if len(pin) % 2 else "")
    return Command(0x00, INS_VERIFY, 0x00, 0x00, bytes.fromhex(digits))


def verify_status() -> Command:
    """VERIFY with no data: asks for the retry counter (63Cx) without spending a try."""
    return Command(0x00, INS_VERIFY, 0x00, 0x00)


def get_response(le: int) -> Command:
    return Command(0x00, INS_GET_RESPONSE, 0x00, 0x00, le=le)


def check_sw(sw: int, what: str = "") -> None:
    """The one place a status word becomes an error.  9000 (and 6282, short read) pass."""
    if sw in (SW_OK, SW_EOF):
        return
    detail = f"{what}: SW {sw:04X}" if what else f"SW {sw:04X}"
    if sw & 0xFFF0 == 0x63C0:
        left = sw & 0x0F
        if left == 0:
            raise CardLockedError(detail=detail, sw=sw)
        raise WrongPinError(left, detail=detail, sw=sw)
    if sw == SW_BLOCKED or sw == SW_FILE_INVALIDATED:
        raise CardLockedError(detail=detail, sw=sw)
    if sw == SW_SECURITY:
        raise PinRequiredError(detail=detail, sw=sw)
    if sw in (SW_NOT_FOUND, SW_RECORD_NOT_FOUND):
        raise CardFileNotFound(detail=detail, sw=sw)
    raise CardStatusError(f"读卡失败：卡片返回错误（代码 {sw:04X}），请重新插卡", detail, sw=sw)
