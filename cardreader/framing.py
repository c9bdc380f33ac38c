"""The reader's binary frame format and an incremental decoder.  Pure: no I/O, no clocks.

Data frame (both directions)::

    STX 0x02 | LEN (2 bytes, big-endian, = len(DATA)) | SEQ | CODE | DATA | CRC (2 bytes, BE) | ETX 0x03

CODE is the command (host -> reader) or the status (reader -> host).  CRC is
CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no xor-out) over LEN..DATA.

Control frames are two bytes: ``ACK 0x06 SEQ`` and ``NAK 0x15 SEQ``.

``FrameDecoder.feed`` accepts any chunking, drops noise, and after a bad frame (length too
big, wrong ETX, wrong CRC) skips only that frame's STX and rescans, so a good frame hidden
behind garbage is still found.  Bad frames are not raised (the stream goes on) but recorded
as typed ``ProtocolError``s in ``errors`` for the caller to act on (NAK, early retransmit).
"""
from __future__ import annotations

import binascii
from collections import deque
from dataclasses import dataclass
from enum import Enum

from .errors import (
    BadEndMarker,
    BadInput,
    CrcMismatch,
    FrameTooLong,
    MalformedFrame,
    ProtocolError,
)

STX, ETX, ACK, NAK = 0x02, 0x03, 0x06, 0x15
MAX_PAYLOAD = 4096
HEADER_LEN = 5   # STX LEN_HI LEN_LO SEQ CODE
TRAILER_LEN = 3  # CRC_HI CRC_LO ETX
OVERHEAD = HEADER_LEN + TRAILER_LEN


def crc16_ccitt_false(data: bytes | bytearray | memoryview, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE; crc16_ccitt_false(b"123456789") == 0x29B1.

    binascii.crc_hqx is exactly this polynomial, unreflected, with the init we pass -- and in C,
    which keeps resync over adversarial noise (an STX every few bytes) cheap."""
    return binascii.crc_hqx(data, crc)


class Kind(Enum):
    DATA = "data"
    ACK = "ack"
    NAK = "nak"


@dataclass(frozen=True)
class Frame:
    seq: int
    code: int = 0
    data: bytes = b""
    kind: Kind = Kind.DATA

    @classmethod
    def ack(cls, seq: int) -> Frame:
        return cls(seq, kind=Kind.ACK)

    @classmethod
    def nak(cls, seq: int) -> Frame:
        return cls(seq, kind=Kind.NAK)

    def encode(self, max_payload: int = MAX_PAYLOAD) -> bytes:
        if not 0 <= self.seq <= 0xFF:
            raise MalformedFrame(f"seq {self.seq} out of range")
        if self.kind is Kind.ACK:
            return bytes((ACK, self.seq))
        if self.kind is Kind.NAK:
            return bytes((NAK, self.seq))
        return encode_frame(self.seq, self.code, self.data, max_payload)

    def __repr__(self) -> str:  # data may be card content: show only its size
        if self.kind is not Kind.DATA:
            return f"Frame({self.kind.value}, seq={self.seq})"
        return f"Frame(seq={self.seq}, code=0x{self.code:02X}, {len(self.data)} bytes)"


def encode_frame(seq: int, code: int, data: bytes = b"", max_payload: int = MAX_PAYLOAD) -> bytes:
    if len(data) > max_payload:
        raise FrameTooLong(f"payload {len(data)} > {max_payload}")
    if not (0 <= seq <= 0xFF and 0 <= code <= 0xFF):
        raise MalformedFrame("seq/code must be one byte")
    body = len(data).to_bytes(2, "big") + bytes((seq, code)) + bytes(data)
    return bytes((STX,)) + body + crc16_ccitt_false(body).to_bytes(2, "big") + bytes((ETX,))


def decode_frame(raw: bytes, max_payload: int = MAX_PAYLOAD) -> Frame:
    """Strictly decode exactly one frame (data or control); raise a ProtocolError otherwise."""
    raw = bytes(raw)
    if len(raw) == 2 and raw[0] in (ACK, NAK):
        return Frame(raw[1], kind=Kind.ACK if raw[0] == ACK else Kind.NAK)
    if len(raw) < OVERHEAD or raw[0] != STX:
        raise MalformedFrame(f"not a frame ({len(raw)} bytes)")
    length = int.from_bytes(raw[1:3], "big")
    if length > max_payload:
        raise FrameTooLong(f"LEN {length} > {max_payload}")
    if len(raw) != OVERHEAD + length:
        raise MalformedFrame(f"LEN {length} but {len(raw) - OVERHEAD} payload bytes")
    err = _check(raw, 0, len(raw))
    if err:
        raise err
    return Frame(raw[3], raw[4], raw[5:-3])


def _check(buf: bytes | bytearray, start: int, end: int) -> ProtocolError | None:
    if buf[end - 1] != ETX:
        return BadEndMarker(f"byte 0x{buf[end - 1]:02X} where ETX expected")
    want = int.from_bytes(buf[end - 3:end - 1], "big")
    got = crc16_ccitt_false(memoryview(buf)[start + 1:end - 3])
    if want != got:
        return CrcMismatch(f"CRC 0x{want:04X} in frame, computed 0x{got:04X}", seq=buf[start + 3])
    return None


class FrameDecoder:
    """Incremental decoder.  ``feed`` returns the complete frames found so far.

    The internal buffer never holds more than one partial frame (< OVERHEAD + max_payload
    bytes) between calls.  ``errors`` keeps the most recent frame-level errors, ``dropped``
    counts discarded bytes.
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD, max_errors: int = 32):
        self.max_payload = max_payload
        self._buf = bytearray()
        self.errors: deque[ProtocolError] = deque(maxlen=max_errors)
        self.dropped = 0

    @property
    def pending(self) -> int:
        """Bytes held back as the start of an incomplete frame."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise BadInput(f"feed() wants bytes, got {type(data).__name__}")
        out: list[Frame] = []
        step = OVERHEAD + self.max_payload
        view = memoryview(data).cast("B")
        # Slices keep the buffer bounded even if a caller hands in megabytes at once.
        for i in range(0, len(view), step):
            self._buf += view[i:i + step]
            out += self._drain()
        return out

    def resync(self) -> list[Frame]:
        """Give up on the partial frame being waited for (its LEN was probably corrupted):
        drop its first byte and rescan what follows.  Call when the line has gone quiet."""
        if not self._buf:
            return []
        del self._buf[:1]
        self.dropped += 1
        return self._drain()

    def reset(self) -> None:
        self.dropped += len(self._buf)
        self._buf.clear()

    def pop_errors(self) -> list[ProtocolError]:
        errs = list(self.errors)
        self.errors.clear()
        return errs

    def _drain(self) -> list[Frame]:
        buf, out, i = self._buf, [], 0
        while i < len(buf):
            b = buf[i]
            if b == STX:
                if len(buf) - i < HEADER_LEN:
                    break
                length = (buf[i + 1] << 8) | buf[i + 2]
                if length > self.max_payload:
                    self._bad(FrameTooLong(f"LEN {length} > {self.max_payload}"))
                    i += 1
                    continue
                end = i + OVERHEAD + length
                if end > len(buf):
                    break
                err = _check(buf, i, end)
                if err:
                    self._bad(err)
                    i += 1  # skip only this STX: a real frame may start inside the bad one
                    continue
                out.append(Frame(buf[i + 3], buf[i + 4], bytes(buf[i + 5:end - 3])))
                i = end
            elif b in (ACK, NAK):
                if len(buf) - i < 2:
                    break
                out.append(Frame(buf[i + 1], kind=Kind.ACK if b == ACK else Kind.NAK))
                i += 2
            else:
                j = _next_start(buf, i + 1)
                self.dropped += j - i
                i = j
        del buf[:i]
        return out

    def _bad(self, err: ProtocolError) -> None:
        self.errors.append(err)
        self.dropped += 1


def _next_start(buf: bytearray, start: int) -> int:
    hits = [p for p in (buf.find(STX, start), buf.find(ACK, start), buf.find(NAK, start)) if p >= 0]
    return min(hits) if hits else len(buf)
