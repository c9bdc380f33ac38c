"""ISO 7816-4 simple-TLV: TAG (1 byte, not 00/FF) | LEN (1 byte, or FF + 2 bytes BE) | VALUE.

Files may be padded after the last TLV with 00 or FF bytes (as cards are personalised into
fixed-size files); anything else that does not parse is a ``TlvError``.
"""
from __future__ import annotations

from collections.abc import Iterable

from .errors import TlvError

_PAD = (0x00, 0xFF)


def encode_tlv(items: Iterable[tuple[int, bytes]]) -> bytes:
    out = bytearray()
    for tag, value in items:
        if not 0x01 <= tag <= 0xFE:
            raise TlvError(f"tag 0x{tag:02X} not allowed")
        n = len(value)
        if n > 0xFFFF:
            raise TlvError(f"value of tag 0x{tag:02X} too long ({n})")
        out.append(tag)
        out += bytes((n,)) if n < 0xFF else b"\xff" + n.to_bytes(2, "big")
        out += value
    return bytes(out)


def parse_tlv(data: bytes) -> list[tuple[int, bytes]]:
    items, i, n = [], 0, len(data)
    while i < n:
        tag = data[i]
        if tag in _PAD:
            if any(b not in _PAD for b in data[i:]):
                raise TlvError(f"invalid tag 0x{tag:02X} at offset {i}")
            break
        if i + 1 >= n:
            raise TlvError(f"tag 0x{tag:02X} at offset {i} has no length")
        length, i = data[i + 1], i + 2
        if length == 0xFF:
            if i + 2 > n:
                raise TlvError(f"tag 0x{tag:02X}: truncated 3-byte length")
            length, i = int.from_bytes(data[i:i + 2], "big"), i + 2
        if i + length > n:
            raise TlvError(f"tag 0x{tag:02X}: length {length} runs past the end ({n - i} left)")
        items.append((tag, bytes(data[i:i + length])))
        i += length
    return items


def tlv_dict(data: bytes) -> dict[int, bytes]:
    """Parse and index by tag; a repeated tag is an error (a file holds each item once)."""
    out: dict[int, bytes] = {}
    for tag, value in parse_tlv(data):
        if tag in out:
            raise TlvError(f"tag 0x{tag:02X} appears twice")
        out[tag] = value
    return out
