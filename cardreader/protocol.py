"""Reader command codes (host -> reader CODE byte) and status codes (reader -> host CODE byte).

A response frame echoes the request's SEQ.  A retransmitted request keeps its SEQ, so the
reader can answer it from its last response instead of running it twice (a VERIFY must not
cost the patient two PIN tries because an answer got lost on the wire).
"""
from __future__ import annotations

from enum import IntEnum


class Cmd(IntEnum):
    GET_VERSION = 0x01   # -> OK + ASCII version string
    CARD_STATUS = 0x02   # -> OK + 1 byte: bit0 card present, bit1 card powered
    POWER_ON = 0x10      # -> OK + ATR
    POWER_OFF = 0x11     # -> OK
    APDU = 0x12          # DATA = command APDU -> OK + response APDU (data || SW1 SW2)
    BEEP = 0x20          # DATA = duration ms (2 bytes BE) || LED (1 byte) -> OK
    PIN_ENTRY = 0x21     # DATA = timeout s (1 byte) -> OK + PIN digits typed on the reader's pad


class Status(IntEnum):
    OK = 0x00
    NO_CARD = 0x01        # no card in the slot
    CARD_MUTE = 0x02      # card in the slot but no answer to reset / to an APDU
    CARD_REMOVED = 0x03   # card pulled out since POWER_ON
    NOT_POWERED = 0x04    # APDU before POWER_ON
    UNKNOWN_COMMAND = 0x05
    BAD_PARAMETER = 0x06
    PIN_CANCELLED = 0x07  # patient pressed cancel, or PIN entry timed out


class Led(IntEnum):
    OFF = 0
    GREEN = 1
    RED = 2


CARD_PRESENT = 0x01
CARD_POWERED = 0x02


def cmd_name(code: int) -> str:
    try:
        return Cmd(code).name
    except ValueError:
        return f"CMD_{code:02X}"


def status_name(code: int) -> str:
    try:
        return Status(code).name
    except ValueError:
        return f"STATUS_{code:02X}"
